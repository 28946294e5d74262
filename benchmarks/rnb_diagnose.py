"""Why R&B's weights move as they do: read the per-round records that ``benchmarks/rnb_sweep.py``
committed (``benchmarks/results/rnb_sweep.jsonl``) and print, per variant and domain set:

- the round-to-round L1 change of the weights (median after the first 3 rounds, and every round);
- how much of the Gram's diagonal is sampling noise: 1 - unbiased / plug-in diagonal, mean over
  rounds and domains (the plug-in's excess is tr(Cov_i) / n_i);
- whether a domain that got more examples in a round shows a smaller plug-in diagonal: the
  correlation over (round, domain) of log(n_i) with log(plug-in G_ii), and the same for the
  unbiased diagonal (a learning effect would show in both, a noise effect only in the plug-in);
- lambda x the spread (max - min) of the normalised G pbar: the log of the largest weight ratio the
  softmax can set;
- the domain that loses most against stratified on the same seed (per-domain validation loss).

    python benchmarks/rnb_diagnose.py [--results benchmarks/results/rnb_sweep.jsonl] [--temperature 3] \
        [--figure docs/img/rnb_rounds.png --variants paper,<default>]

``--figure``: the weights each round set (round 0: uniform), seed 0, one panel per (variant, domain set), with the L1
change of each round in the title.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rnb_sweep import HERE, read_results


def diagnose(rows: list[dict], lam: float, corpus: str = "demo") -> str:
    rows = [r for r in rows if r["corpus"] == corpus]
    ref = {(r["corpus"], r["tokens"], r["layer"], r["seed"]): r for r in rows if r["method"] == "stratified"}
    ref_orig = {(c, t, s): r for (c, t, layer, s), r in ref.items() if layer == "original"}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("l1_change"):
            groups.setdefault((r["corpus"], r["tokens"], r["variant"], r["layer"]), []).append(r)
    out = ["| variant | domains | seeds | median L1 after round 3 | L1 per round (first seed) | noise share of "
           "plug-in G_ii | corr(log n_i, log G_ii) plug-in / unbiased | lambda x spread of G pbar / norm | "
           "domain losing most vs stratified / original |", "|---|---|---|---|---|---|---|---|---|"]
    for (corpus, tokens, variant, layer), rs in sorted(groups.items()):
        med = [r["median_l1_after3"] for r in rs if r.get("median_l1_after3") is not None]
        noise, c_plug, c_unb, spread = [], [], [], []
        for r in rs:
            n = np.asarray(r["counts"], dtype=float)
            plug = np.asarray(r["diag_plugin"], dtype=float)
            unb = np.asarray(r["diag_unbiased"], dtype=float) if r.get("diag_unbiased") else None
            ok = (n > 0) & (plug > 0)
            if unb is not None:
                noise.append(float(np.mean(1 - unb[ok] / plug[ok])))
                pos = ok & (unb > 0)
                c_unb.append(np.corrcoef(np.log(n[pos]), np.log(unb[pos]))[0, 1])
            c_plug.append(np.corrcoef(np.log(n[ok]), np.log(plug[ok]))[0, 1])
            v = np.asarray(r["gpbar"], dtype=float)
            u = v / np.linalg.norm(v, axis=1, keepdims=True)
            spread.append(float(np.mean(r["params"].get("temperature", lam) * (u.max(1) - u.min(1)))))
        losing = _losing(rs, ref_orig, corpus, tokens)
        out.append(f"| {variant} | {layer} | {len(rs)} | {_ms(med, '.3f')} | "
                   f"{' '.join(f'{x:.2f}' for x in rs[0]['l1_change'])} | {_ms(noise, '.2f')} | "
                   f"{_ms(c_plug, '+.2f')} / {_ms(c_unb, '+.2f')} | {_ms(spread, '.2f')} | {losing} |")
    return "\n".join(out)


def _losing(rs: list[dict], ref: dict, corpus: str, tokens: int) -> str:
    deltas: dict[str, list[float]] = {}
    for r in rs:
        base = ref.get((corpus, tokens, r["seed"]))
        if base:
            for d, loss in r["per_domain"].items():
                deltas.setdefault(d, []).append(loss - base["per_domain"][d])
    if not deltas:
        return "—"
    worst = max(deltas, key=lambda d: np.mean(deltas[d]))
    return f"{worst} {np.mean(deltas[worst]):+.3f}"


def _ms(v: list[float], fmt: str) -> str:
    v = [x for x in v if x is not None and np.isfinite(x)]
    if not v:
        return "—"
    return f"{np.mean(v):{fmt}}" + (f" ± {np.std(v, ddof=1):{fmt.lstrip('+')}}" if len(v) > 1 else "")


def figure(rows: list[dict], variants: list[str], out: Path) -> Path:
    from domix.evaluate.plots import pyplot, save_figure

    runs = [r for v in variants for r in rows
            if r["variant"] == v and r["seed"] == 0 and r.get("weights") and r["corpus"] == "demo"]
    layers = sorted({r["layer"] for r in runs})
    plt = pyplot()
    fig, axes = plt.subplots(len(layers), len(variants), figsize=(4.2 * len(variants), 3.4 * len(layers)),
                             squeeze=False, sharey=True)
    for r in runs:
        ax = axes[layers.index(r["layer"])][variants.index(r["variant"])]
        W = np.asarray(r["weights"])
        W = np.vstack([np.full(W.shape[1], 1.0 / W.shape[1]), W])  # round 0: p_0 uniform
        rounds = np.arange(len(W))
        ax.stackplot(rounds, W.T, labels=r["domains"])
        ax.set_xticks(rounds)
        ax.set_title(f"{r['variant']} / {r['layer']}: L1 " + " ".join(f"{x:.2f}" for x in r["l1_change"]),
                     fontsize=8)
        ax.set_xlabel("round")
        ax.set_ylim(0, 1)
        if r["layer"] == "original" or len(r["domains"]) <= 5:
            ax.legend(fontsize=6, loc="upper left")
    return save_figure(fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=HERE / "results" / "rnb_sweep.jsonl")
    ap.add_argument("--temperature", type=float, default=3.0, help="R&B's lambda where a run's params omit it")
    ap.add_argument("--corpus", default="demo")
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument("--variants", default="paper", help="comma list: the figure's columns")
    args = ap.parse_args()
    rows = read_results(args.results)
    print(diagnose(rows, args.temperature, args.corpus))
    if args.figure:
        print(f"figure: {figure(rows, args.variants.split(','), args.figure)}")


if __name__ == "__main__":
    main()

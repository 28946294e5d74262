"""What DoGraph's update does, from the per-refresh records of the DoGraph sweep (no training).

    python benchmarks/dograph_diagnose.py [--results benchmarks/results/dograph_sweep.jsonl]

The sweep (``benchmarks/rnb_sweep.py --method dograph``) keeps, for every refresh of every run, the
trust-region anchor w_prev, the utility u, the trust-region-only solution ("free": -u.w (+ the MMD's
quadratic) + beta KL, no graph, no box), the constrained cluster weights w, the repetition caps and
each cluster's training loss over the probe. Per variant and domain set, averaged over refreshes
and seeds, this prints:

- ``move``: L1(w_prev, w), how far a refresh moves the cluster weights;
- ``free``: L1(w_prev, free), how far the objective alone (with the trust region) would move them;
- ``pull``: L1(free, w), what the graph's smoothness and the box take back (``pull`` ~ ``free``
  with ``move`` ~ 0 means the graph term dominates; ``pull`` ~ 0, the utility and trust region do);
- ``at cap``: share of clusters at their repetition cap;
- ``rho(u, loss)``: Spearman correlation of utility and the cluster's training loss per refresh
  (positive: the objective favours what the model still predicts badly);
- ``rho(dw, loss)``: the same for the weight change w - w_prev;
- ``vs target``: L1 between the last unit mixture and the macro target (uniform over the original
  domains on ``original``), i.e. how far from stratified the run ends.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rnb_sweep import read_results

HERE = Path(__file__).resolve().parent


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a[ok])), np.argsort(np.argsort(b[ok]))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def refresh_stats(row: dict) -> dict[str, float]:
    out: dict[str, list[float]] = {k: [] for k in ("move", "free", "pull", "cap", "rho_u", "rho_dw")}
    for i in range(len(row["step"])):
        w_prev = np.asarray(row["w_prev"][i])
        w_prev = w_prev / w_prev.sum()
        w, free, cap = (np.asarray(row[k][i]) for k in ("cluster_weights", "unconstrained", "cap"))
        loss = np.asarray([np.nan if x is None else x for x in row["cluster_train_loss"][i]], dtype=float)
        out["move"].append(np.abs(w - w_prev).sum())
        out["free"].append(np.abs(free - w_prev).sum())
        out["pull"].append(np.abs(w - free).sum())
        out["cap"].append(float(np.isclose(w, cap, atol=1e-6).mean()))
        out["rho_u"].append(spearman(np.asarray(row["utility"][i]), loss))
        out["rho_dw"].append(spearman(w - w_prev, loss))
    return {k: float(np.nanmean(v)) if len(v) else float("nan") for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results" / "dograph_sweep.jsonl")
    args = ap.parse_args()
    rows = [r for r in read_results(args.results) if r["method"] == "dograph" and r.get("step")]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["corpus"], r["variant"], r["layer"]), []).append(r)
    print("| corpus | variant | domains | runs | move | free | pull | at cap | rho(u, loss) | rho(dw, loss) | vs target |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (corpus, variant, layer), rs in sorted(groups.items()):
        st = [refresh_stats(r) for r in rs]
        mean = {k: np.nanmean([s[k] for s in st]) for k in st[0]}
        far = []
        for r in rs:
            last = np.asarray(r["weights"][-1])
            if layer == "original":
                far.append(np.abs(last - 1 / len(last)).sum())
        vs = f"{np.mean(far):.3f}" if far else "—"
        print(f"| {corpus} | {variant} | {layer} | {len(rs)} | {mean['move']:.3f} | {mean['free']:.3f} | {mean['pull']:.3f} | "
              f"{mean['cap']:.2f} | {mean['rho_u']:+.2f} | {mean['rho_dw']:+.2f} | {vs} |")


if __name__ == "__main__":
    main()

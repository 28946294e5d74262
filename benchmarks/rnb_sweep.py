"""Sweep a mixing method's settings on the demo corpus, in resumable pieces (how R&B's defaults are
chosen: docs/benchmarks.md, "R&B: diagnosis").

    python benchmarks/rnb_sweep.py --variant paper=target=documents,step=1,min_weight=0 \\
        --variant macro+step0.25+floor0.05=target=macro,step=0.25,min_weight=0.05 --minutes 20

Each ``--variant name=key=value,...`` sets ``params.<method>``. Give every setting that differs
from another variant explicitly, defaults included: a variant's name is the key that skips finished
runs, so its meaning must not change when a default does (each row also records the method's whole
resolved config in ``params``). The variants of docs/benchmarks.md, "R&B: diagnosis"::

    --variant paper=target=documents,step=1,min_weight=0
    --variant macro+step0.25+floor0.05=target=macro,step=0.25,min_weight=0.05   # the default Every run is an ordinary
``domix compare`` grid run (``compare.grid.run_cell``) of the demo comparison's recipe
(``configs/compare-demo.yaml``: tiny GPT-2, 192 steps, K = 32); stratified runs once per seed and
domain set. Each finished run appends one JSON line to ``--results`` (committed:
``benchmarks/results/rnb_sweep.jsonl``): a run already there is skipped, so a sweep stopped by
``--minutes`` (no new run starts after it) or killed is continued by the same command in a later
session; an interrupted run resumes from its checkpoint under ``--out`` when that folder survives.
Order: seed by seed, so a partial sweep compares every variant at the first seeds.

A line holds the run's macro / worst / per-domain validation loss, its wall time and, for R&B, the
L1 change of the weights of every round and their median after the first 3 rounds, and per round
the weights, examples, G pbar and both Gram diagonals (R&B's runs set the signal's
``self_terms: true`` for that; it does not change training). The table
(``--table``, or printed at the end) pairs every variant with stratified at the same seed.
``--quick``: one seed, 96 steps, K = 16, into a separate results file.
Last line: ``sweep_best: <variant> <layer> <mean paired delta vs stratified/original>``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np

from domix import io
from domix.balance.base import METHODS
from domix.compare import CompareConfig
from domix.compare.grid import Cell, prepare_grid, run_cell

HERE = Path(__file__).resolve().parent


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, kvs = text.partition("=")
    params = {}
    for kv in filter(None, kvs.split(",")):
        k, _, v = kv.partition("=")
        params[k] = json.loads(v) if v[:1] in "0123456789-[{" or v in ("true", "false", "null") else v
    return name, params


def read_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{i}: not a JSON line ({e}); fix or delete the line") from None
    return rows


def key(row: dict) -> tuple:
    return (row["corpus"], row["tokens"], row["method"], row["variant"], row["layer"], row["seed"])


def record(cell: Cell, variant: str, params: dict, cfg: CompareConfig, res, commit: str) -> dict:
    s = res.summary
    if cell.method != "stratified":  # every setting, defaults included: a row keeps its meaning
        params = METHODS.get(cell.method).Config.from_dict(params, _path="mixing.params").to_dict()
    row = {"corpus": cfg.corpus, "tokens": cfg.tokens, "method": cell.method, "variant": variant,
           "params": params, "layer": cell.layer, "seed": cell.seed, "macro": s["eval"]["macro"],
           "worst": s["eval"]["worst"], "worst_domain": s["eval"]["worst_domain"],
           "per_domain": s["eval"]["per_domain"], "wall_s": s["wall_s"], "run": res.out_dir.name, "commit": commit}
    mixing = res.out_dir / "mixing.json"
    rounds = io.read_json(mixing).get("diagnostics", {}).get("rounds", []) if mixing.exists() else []
    if rounds:
        l1 = [r["l1_change"] for r in rounds]
        row |= {"l1_change": l1, "median_l1_after3": float(np.median(l1[3:])) if len(l1) > 3 else None,
                "domains": io.read_json(mixing)["domains"],
                **{k: [r.get(k) for r in rounds] for k in ("weights", "counts", "gpbar", "diag_plugin", "diag_unbiased")}}
    refreshes = io.read_json(mixing).get("diagnostics", {}).get("refreshes", []) if mixing.exists() else []
    if refreshes:  # DoGraph: per refresh what its update used and gave (not the probe's PCA)
        l1 = [r["l1_change"] for r in refreshes]
        row |= {"l1_change": l1, "median_l1_after3": float(np.median(l1[3:])) if len(l1) > 3 else None,
                "domains": io.read_json(mixing)["domains"],
                **{k: [r.get(k) for r in refreshes] for k in DOGRAPH_KEYS}}
    return row


DOGRAPH_KEYS = ("step", "assign", "clusters", "utility", "unconstrained", "cluster_weights",
                "cluster_train_loss", "weights", "graph", "w_prev", "cap")


def append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:  # one whole line per write: a kill loses at most that run
        f.write(json.dumps(row) + "\n")


def table(rows: list[dict], corpus: str, tokens: int) -> tuple[str, tuple]:
    rows = [r for r in rows if r["corpus"] == corpus and r["tokens"] == tokens]
    ref = {(r["layer"], r["seed"]): r["macro"] for r in rows if r["method"] == "stratified"}
    out = ["| method | variant | domains | seeds | macro loss | Δ vs stratified / original (paired) | "
           "Δ vs stratified / same domains | median L1 change after round 3 |", "|---|---|---|---|---|---|---|---|"]
    best = None
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["variant"], r["layer"]), []).append(r)
    most = max((len(rs) for rs in groups.values()), default=0)  # sweep_best: among the fully-run variants
    for (method, variant, layer), rs in sorted(groups.items()):
        v = np.array([r["macro"] for r in rs])
        d_orig = np.array([r["macro"] - ref[("original", r["seed"])] for r in rs if ("original", r["seed"]) in ref])
        d_same = np.array([r["macro"] - ref[(layer, r["seed"])] for r in rs if (layer, r["seed"]) in ref])
        l1 = [r["median_l1_after3"] for r in rs if r.get("median_l1_after3") is not None]
        out.append(f"| {method} | {variant} | {layer} | {len(rs)} | {_ms(v, '.4f')} | {_paired(d_orig)} | "
                   f"{_paired(d_same)} | {_ms(np.array(l1), '.3f') if l1 else '—'} |")
        if method != "stratified" and len(d_orig) == most and (best is None or d_orig.mean() < best[2]):
            best = (variant, layer, d_orig.mean())
    return "\n".join(out), best


def _ms(v: np.ndarray, fmt: str) -> str:
    return f"{v.mean():{fmt}}" + (f" ± {v.std(ddof=1):{fmt.lstrip('+')}}" if len(v) > 1 else "")


def _paired(d: np.ndarray) -> str:
    if len(d) == 0:
        return "—"
    return f"{_ms(d, '+.4f')} ({int((d < 0).sum())}/{len(d)} better)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--config", type=Path, default=HERE.parent / "configs" / "compare-demo.yaml")
    ap.add_argument("--method", default="rnb")
    ap.add_argument("--variant", action="append", default=[], help="name=key=value,key=value (repeat)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--domains", default="original,regrouped")
    ap.add_argument("--minutes", type=float, default=20.0, help="start no new run after this many minutes")
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("runs/rnb-sweep"))
    ap.add_argument("--table", action="store_true", help="only print the table of the results file")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    results = args.results or HERE / "results" / f"{args.method}_sweep{'_quick' if args.quick else ''}.jsonl"
    cfg = CompareConfig.from_yaml(args.config).merge([
        f"methods={['stratified', args.method]}", f"seeds={[int(s) for s in args.seeds.split(',')]}",
        f"domains={args.domains.split(',')}"])
    if args.quick:
        cfg = cfg.merge(["seeds=[0]", "tokens=196608", f"params.{args.method}.round_steps=16"])
    if not args.table:
        sweep(args, cfg, results)
    text, best = table(read_results(results), cfg.corpus, cfg.tokens)
    print(f"\n{args.method} sweep on {cfg.corpus}, {cfg.tokens:,} tokens per run ({results})\n{text}")
    if best:
        print(f"sweep_best: {best[0]} {best[1]} {best[2]:+.4f}")


def sweep(args, cfg: CompareConfig, results: Path) -> None:
    variants = [parse_variant(v) for v in args.variant] or [("defaults", {})]
    base_params = cfg.params.get(args.method, {})
    todo = [(Cell("stratified", layer, seed), "-", {}) for seed in cfg.seeds for layer in cfg.domains]
    todo += [(Cell(args.method, layer, seed), name, {**base_params, **p})
             for seed in cfg.seeds for name, p in variants for layer in cfg.domains]
    todo.sort(key=lambda t: t[0].seed)  # seed by seed (stable: stratified first within a seed)
    done = {key(r) for r in read_results(results)}
    todo = [t for t in todo if (cfg.corpus, cfg.tokens, t[0].method, t[1], t[0].layer, t[0].seed) not in done]
    print(f"== {len(todo)} runs to do ({len(done)} already in {results})", flush=True)
    if not todo:
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    base, data, _ = prepare_grid(cfg)
    # R&B's runs also sum each step's block norms, so every record holds both Gram diagonals
    method_base = base.merge(["mixing.signals.domain_grad_gram.self_terms=true"]) if args.method == "rnb" else base
    t0 = time.perf_counter()
    for i, (cell, name, params) in enumerate(todo):
        if time.perf_counter() - t0 > args.minutes * 60:
            print(f"== --minutes {args.minutes} reached: {len(todo) - i} runs left for the next call", flush=True)
            break
        print(f"== [{i + 1}/{len(todo)}] {cell.group} {name} seed {cell.seed}", flush=True)
        res = run_cell(cell, base if cell.method == "stratified" else method_base, data[cell.layer],
                       args.out / "runs", params)
        append(results, record(cell, name, params, cfg, res, commit))
        print(f"   macro {res.summary['eval']['macro']:.4f}", flush=True)


if __name__ == "__main__":
    main()

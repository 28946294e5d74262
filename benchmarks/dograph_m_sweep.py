"""DoGraph's number of model-centric domains m: validation loss against m (the paper's U-curve),
next to stratified and R&B on the same base domains at the same tokens; plus DoGraph's analysis
figures (PCA of per-sample gradient features by original domain, the domain graph).

    python benchmarks/dograph_m_sweep.py --quick                      # tiny model, capped corpus
    python benchmarks/dograph_m_sweep.py --ms 2,4,8,11,16 --seeds 0,1,2 --steps 600

Results accumulate in ``<out>/results.json`` (a finished (method, m, seed) is not run again, so a
sweep can be split over several invocations, e.g. ``--ms 2,4`` then ``--ms 8,11``);
``<out>/m_sweep.png`` is redrawn from everything there. The headline metric is the macro
validation loss over the original domains (nats/token).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from domix import io
from domix.train.run import RunConfig, prepare_data, train


def _config(args, out_dir: Path, method: str, params: dict, seed: int) -> RunConfig:
    return RunConfig.from_dict({
        "out_dir": str(out_dir),
        "data": {"corpus": "demo", "max_docs_per_domain": args.cap, "domains": args.domains},
        "model": {"preset": args.preset},
        "train": {"steps": args.steps, "batch_size": args.batch_size, "seed": seed, "lr": 3e-3,
                  "warmup_steps": 20, "eval_every": args.steps, "eval_tokens_per_domain": 16384,
                  "log_every": 10, "checkpoint_every": 10**9, "progress": False},
        "mixing": {"method": method, "params": params,
                   "signals": {"domain_grad_gram": {"mode": "sketch", "rows": 256}}},
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ms", default=None, help="comma-separated m values")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--round-steps", type=int, default=None, help="DoGraph's R and R&B's K")
    ap.add_argument("--probe-steps", type=int, default=4)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--cap", type=int, default=None, help="documents per original domain")
    ap.add_argument("--domains", default="subdomain", help="the base partition (training domains)")
    ap.add_argument("--baselines", default="stratified,rnb")
    ap.add_argument("--out", default="runs/dograph_m_sweep")
    args = ap.parse_args()
    args.steps = args.steps or (200 if args.quick else 600)
    args.cap = args.cap or (300 if args.quick else None)
    R = args.round_steps or (25 if args.quick else 50)
    ms = [int(x) for x in (args.ms or ("2,4,8,11,16" if args.quick else "2,4,8,11,16,24")).split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res_path = out / "results.json"
    results = io.read_json(res_path) if res_path.exists() else {}
    data = None
    jobs = [(b, 0, {"round_steps": R} if b == "rnb" else {}) for b in args.baselines.split(",") if b]
    jobs += [("dograph", m, {"clusters": m, "round_steps": R, "probe_steps": args.probe_steps}) for m in ms]
    for method, m, params in jobs:
        for seed in seeds:
            key = f"{method}|{m}|{seed}|{args.domains}|{args.steps}|{args.preset}|{R}"
            if key in results:
                continue
            cfg = _config(args, out / f"{method}_m{m}_s{seed}", method, params, seed)
            data = data or prepare_data(cfg)
            r = train(cfg, data=data)
            results[key] = {"method": method, "m": m, "seed": seed, "macro": r.eval.macro,
                            "worst": r.eval.worst[1], "out_dir": str(r.out_dir)}
            io.write_json(res_path, results)
            print(f"{method:10s} m={m:<3d} seed={seed}: val macro {r.eval.macro:.4f}  worst {r.eval.worst[1]:.4f}",
                  flush=True)
    rows = [v for k, v in results.items() if k.endswith(f"|{args.domains}|{args.steps}|{args.preset}|{R}")]
    summary = _plot(rows, out / "m_sweep.png", args)
    io.write_json(out / "summary.json", summary)
    print(json.dumps(summary, indent=1))
    _analysis(rows, out, args, data)


def _mean(rows, method, m=None):
    vals = [r["macro"] for r in rows if r["method"] == method and (m is None or r["m"] == m)]
    return (statistics.mean(vals), statistics.pstdev(vals), len(vals)) if vals else None


def _plot(rows, path: Path, args) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = sorted({r["m"] for r in rows if r["method"] == "dograph"})
    curve = {m: _mean(rows, "dograph", m) for m in ms}
    fig, ax = plt.subplots(figsize=(6, 4))
    if ms:
        ax.errorbar(ms, [curve[m][0] for m in ms], yerr=[curve[m][1] for m in ms], marker="o", capsize=3,
                    label="DoGraph")
    for i, b in enumerate(sorted({r["method"] for r in rows} - {"dograph"})):
        mean = _mean(rows, b)
        ax.axhline(mean[0], ls="--", color=f"C{i + 1}", label=f"{b} ({mean[0]:.3f})")
    ax.set_xlabel("model-centric domains m")
    ax.set_ylabel("validation loss, macro over original domains (nats/token)")
    ax.set_title(f"DoGraph m sweep: {args.preset}, {args.steps} steps, base {args.domains}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    best = min(ms, key=lambda m: curve[m][0]) if ms else None
    return {"dograph": {str(m): curve[m] for m in ms}, "best_m": best,
            **{b: _mean(rows, b) for b in {r["method"] for r in rows} - {"dograph"}}}


def _analysis(rows, out: Path, args, data) -> None:
    from domix.evaluate.dograph_plots import plot_domain_graph, plot_feature_pca, unit_groups

    dg = sorted((r for r in rows if r["method"] == "dograph"), key=lambda r: (abs(r["m"] - 11), r["macro"]))
    if not dg:  # the figures for the paper's m = 11, or the m closest to it
        return
    mixing = Path(dg[0]["out_dir"]) / "mixing.json"
    if data is None:
        data = prepare_data(_config(args, out / "_", "stratified", {}, 0))
    groups = unit_groups(data)
    print("wrote", plot_feature_pca(mixing, groups, out / "pca_features.png"),
          plot_domain_graph(mixing, out / "domain_graph.png"))


if __name__ == "__main__":
    main()

"""DoGraph's number of model-centric domains m: validation loss against m (the paper's U-curve),
next to stratified and R&B on the same base domains at the same tokens; plus DoGraph's analysis
figures (PCA of per-sample gradient features by original domain, the domain graph).

    python benchmarks/dograph_m_sweep.py --quick                      # tiny model, capped corpus
    python benchmarks/dograph_m_sweep.py --ms 2,4,8,11,16 --seeds 0,1,2 --steps 600

Baselines (``--baselines``) run on the same base partition; ``prior`` is the control that says
what the reweighting adds: DoGraph held at its prior mixture for the whole run (warm-up = the run).

Every finished run appends one JSON line to ``--results`` (committed:
``benchmarks/results/dograph_m_sweep.jsonl``, ``..._quick.jsonl`` with ``--quick``); a finished
(method, m, seed, base, steps, preset, R, probe steps, DoGraph params) is not run again, so a sweep
is split over invocations (``--ms 2,4`` then ``--ms 8,11``, or ``--minutes``: no new run starts
after that many minutes) and continued by the same command in a later session. The figure
(``--figure``, default ``<out>/m_sweep.png``) is redrawn from every matching line. The headline
metric is the macro validation loss over the original domains (nats/token).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from domix import io
from domix.run import RunConfig, prepare_data, train
from rnb_sweep import read_results

HERE = Path(__file__).resolve().parent


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
    ap.add_argument("--probe-steps", type=int, default=16)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--cap", type=int, default=None, help="documents per original domain")
    ap.add_argument("--domains", default="subdomain", help="the base partition (training domains)")
    ap.add_argument("--baselines", default="stratified,rnb",
                    help="methods on the same base; 'prior' = DoGraph held at its prior mixture (no refresh)")
    ap.add_argument("--params", default="{}", help="further DoGraph params, JSON")
    ap.add_argument("--minutes", type=float, default=None, help="start no new run after this many minutes")
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument("--out", default="runs/dograph_m_sweep")
    args = ap.parse_args()
    args.steps = args.steps or (200 if args.quick else 600)
    args.cap = args.cap or (300 if args.quick else None)
    R = args.round_steps or (25 if args.quick else 50)
    ms = [int(x) for x in (args.ms or ("2,4,8,11,16" if args.quick else "2,4,8,11,16,24")).split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res_path = args.results or HERE / "results" / f"dograph_m_sweep{'_quick' if args.quick else ''}.jsonl"
    extra = json.loads(args.params)
    setting = {"domains": args.domains, "steps": args.steps, "preset": args.preset, "round_steps": R,
               "cap": args.cap, "batch_size": args.batch_size}
    data = None
    jobs = [(b, 0, {"round_steps": R} if b == "rnb" else {}) for b in args.baselines.split(",") if b and b != "prior"]
    if "prior" in args.baselines.split(","):  # DoGraph held at its prior for the whole run: the control
        jobs.append(("dograph@prior", 0, _resolved({**extra, "round_steps": R, "probe_steps": args.probe_steps,
                                                   "warmup_steps": args.steps})))
    jobs += [("dograph", m, _resolved({**extra, "clusters": m, "round_steps": R, "probe_steps": args.probe_steps}))
             for m in ms]  # every DoGraph setting, defaults included: a line keeps its meaning
    done = {_key(r) for r in read_results(res_path)}
    todo = [(method, m, params, seed) for method, m, params in jobs for seed in seeds
            if _key({"method": method, "m": m, "seed": seed, "params": params, **setting}) not in done]
    print(f"== {len(todo)} runs to do ({res_path})", flush=True)
    t0 = time.perf_counter()
    for method, m, params, seed in todo:
        if args.minutes is not None and time.perf_counter() - t0 > args.minutes * 60:
            print(f"== --minutes {args.minutes} reached: rerun the same command to continue", flush=True)
            break
        tag = io.fingerprint(json.dumps([params, setting], sort_keys=True))[:8]
        cfg = _config(args, out / f"{method.replace('@', '_')}_m{m}_s{seed}_{tag}", method.split("@")[0], params, seed)
        data = data or prepare_data(cfg)
        r = train(cfg, data=data)
        row = {"method": method, "m": m, "seed": seed, "params": params, **setting, "macro": r.eval.macro,
               "worst": r.eval.worst[1], "wall_s": r.summary["wall_s"], "out_dir": str(r.out_dir)}
        res_path.parent.mkdir(parents=True, exist_ok=True)
        with open(res_path, "a", encoding="utf-8") as f:  # one whole line per run: a kill loses that run only
            f.write(json.dumps(row) + "\n")
        print(f"{method:10s} m={m:<3d} seed={seed}: val macro {r.eval.macro:.4f}  worst {r.eval.worst[1]:.4f}",
              flush=True)
    rows = [r for r in read_results(res_path) if all(r[k] == v for k, v in setting.items())
            and (r["method"] != "dograph" or {k: v for k, v in r["params"].items() if k != "clusters"}
                 == {k: v for k, v in jobs[-1][2].items() if k != "clusters"})]  # this DoGraph setting
    summary = _plot(rows, args.figure or out / "m_sweep.png", args)
    io.write_json(out / "summary.json", summary)
    print(json.dumps(summary, indent=1))
    _analysis(rows, out, args, data)


def _resolved(params: dict) -> dict:
    from domix.balance.base import METHODS

    return METHODS.get("dograph").Config.from_dict(params, _path="mixing.params").to_dict()


def _key(row: dict) -> str:
    fields = ("method", "m", "seed", "domains", "steps", "preset", "round_steps", "cap", "batch_size")
    return json.dumps([row[k] for k in fields] + [row["params"]], sort_keys=True)


def _mean(rows, method, m=None):
    vals = [r["macro"] for r in rows if r["method"] == method and (m is None or r["m"] == m)]
    return (statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0, len(vals)) if vals else None


def _plot(rows, path: Path, args) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = sorted({r["m"] for r in rows if r["method"] == "dograph"})
    curve = {m: _mean(rows, "dograph", m) for m in ms}
    fig, ax = plt.subplots(figsize=(6, 4))
    if ms:
        ax.errorbar(ms, [curve[m][0] for m in ms], yerr=[curve[m][1] for m in ms], marker="o", capsize=3,  # ± sample std
                    label="DoGraph")
    for i, b in enumerate(sorted({r["method"] for r in rows} - {"dograph"})):
        mean = _mean(rows, b)
        ax.axhline(mean[0], ls="--", color=f"C{i + 1}", label=f"{b} ({mean[0]:.3f})")
    ax.set_xlabel("model-centric domains m")
    ax.set_ylabel("val. loss, macro over original domains")
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

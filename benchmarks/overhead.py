"""Wall-clock overhead of a mixing method over static stratified weights, same process, same steps.

Runs the method and stratified alternately (which goes first alternates by round) on the same model
and seed, over ``m`` domains (``random:<m>``: documents hashed into m domains, so the cost does not
depend on what the domains mean), and times the training steps after a warm-up, including every
round boundary the method has inside that window. Also reports the memory its signals hold.

    python benchmarks/overhead.py --method rnb                    # gpt2-small, m = 8 and 64, 4 x 50 steps
    python benchmarks/overhead.py --method rnb --mode sketch      # bounded-memory gradient sketch
    python benchmarks/overhead.py --method rnb --quick            # tiny model, 20 steps
    python benchmarks/overhead.py --method dograph --quick --params '{"clusters": 4}'
    python benchmarks/overhead.py --method rnb --profile          # + the ops of both runs side by side, per m

A method whose config has ``round_steps`` gets the benchmark's K (``--round-steps``); anything else
goes through ``--params`` (JSON, applied last) and ``--signals`` (JSON, per-signal settings).

Last line: ``overhead: <ratio>`` (the larger of the per-m median ratios).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile

from _harness import bench_config, cpu_profiler, profile_table, timed_run
from domix.balance.base import METHODS
from domix.run import prepare_data


def run_one(run, data, warmup, out, name, params, signals, method, profiler=None):
    return timed_run(run, data, warmup, out, name, params if name == method else None, signals,
                     profiler=profiler)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", default="rnb")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--domains", default="8,64", help="comma-separated m values")
    ap.add_argument("--steps", type=int, default=None, help="measured steps per run")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--round-steps", type=int, default=None, help="the method's round length K")
    ap.add_argument("--mode", default="exact", help="domain_grad_gram mode: exact or sketch")
    ap.add_argument("--rows", type=int, default=1024, help="sketch rows")
    ap.add_argument("--params", default="{}", help="the method's params as JSON (applied last)")
    ap.add_argument("--signals", default="{}", help="per-signal settings as JSON, e.g. "
                    '\'{"sample_grad_features": {"r1": 8}}\'')
    ap.add_argument("--profile", action="store_true",
                    help="after the rounds, profile one more run of each and print their ops side by side")
    ap.add_argument("--top", type=int, default=20, help="ops shown by --profile")
    args = ap.parse_args()
    preset = "tiny" if args.quick else "gpt2-small"
    steps = args.steps or (20 if args.quick else 50)
    rounds = args.rounds or (2 if args.quick else 4)  # even: each method goes first equally often
    K = args.round_steps or (10 if args.quick else 50)
    warmup = 3
    fields = {f.name for f in dataclasses.fields(METHODS.get(args.method).Config)}
    params = {"round_steps": K} if "round_steps" in fields else {}
    params.update(json.loads(args.params))
    signals = {"domain_grad_gram": {"mode": args.mode, "rows": args.rows}, **json.loads(args.signals)}
    worst = 0.0
    for m in (int(x) for x in args.domains.split(",")):
        run = bench_config(preset, warmup + steps, domains=f"random:{m}")
        data = prepare_data(run)
        ratios, mem = [], 0
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(rounds):
                order = ("stratified", args.method) if r % 2 == 0 else (args.method, "stratified")
                t = {}
                for name in order:
                    res = run_one(run, data, warmup, f"{tmp}/{name}{r}", name, params, signals, args.method)
                    t[name] = res["seconds"]
                    mem = max(mem, res["captured"])
                ratios.append(t[args.method] / t["stratified"])
                print(
                    f"m={m:<4} round {r}: stratified {t['stratified']:.2f}s  {args.method} {t[args.method]:.2f}s  "
                    f"ratio {ratios[-1]:.4f}",
                    flush=True,
                )
            if args.profile:
                prof, wall = {}, {}
                for name in ("stratified", args.method):
                    prof[name] = cpu_profiler()
                    wall[name] = run_one(run, data, warmup, f"{tmp}/profile-{name}", name, params, signals,
                                         args.method, prof[name])["seconds"]
                print(f"\nm={m}: profile of {steps} steps (self CPU ms per op; delta = {args.method} - stratified):")
                print(profile_table({n: (prof[n], wall[n]) for n in prof}, args.top), flush=True)
        ratio = statistics.median(ratios)
        worst = max(worst, ratio)
        print(
            f"m={m}: {preset}, {steps} steps ({params}, {args.mode}), median ratio {ratio:.4f} "
            f"(min {min(ratios):.4f}, max {max(ratios):.4f}), signal memory {mem / 2**20:.1f} MiB",
            flush=True,
        )
    print(f"overhead: {worst:.4f}")


if __name__ == "__main__":
    main()

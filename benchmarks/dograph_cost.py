"""What DoGraph's probes and refreshes cost, measured inside one run (robust to a busy machine).

The wall time of every step (from one step's end to the next, so the refresh done at a step's
start is counted in that step) is classified as plain, probe (the gradient sketch is on) or
refresh. Plain and probe steps interleave in the same process, so slow drift in machine load
affects both alike. The overhead over the same run without DoGraph's work is then

    ((t_probe - t_plain) * probe_steps + (t_refresh - t_plain)) / (round_steps * t_plain)

with medians of each class, next to the FLOP count of the sketch over 6 N D of training. Both wall
time and the process's CPU time are reported; on a shared machine the CPU time (run with
OMP_NUM_THREADS=1) is the steadier of the two.

    python benchmarks/dograph_cost.py --quick          # tiny model, R = 32, 100 steps
    python benchmarks/dograph_cost.py                  # gpt2-small, R = 50, 200 steps
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

from _harness import bench_config
from domix.balance.base import Domains, build_method
from domix.balance.callback import MixingCallback
from domix.data.sampler import MixtureSampler
from domix.run import prepare_data
from domix.train.callbacks import Callback
from domix.train.evaluate import Evaluator
from domix.train.loop import Trainer
from domix.train.models import count_parameters


class StepClock(Callback):
    name = "step_clock"

    def __init__(self, mixing: MixingCallback) -> None:
        self.mixing, self.rows, self.t, self.refreshes = mixing, [], None, 0

    def on_step_end(self, trainer, step, out):
        now = (time.perf_counter(), time.process_time())
        n = len(self.mixing.method.refreshes)
        kind = "refresh" if n > self.refreshes else ("probe" if self.mixing.signals else "plain")
        if self.t is not None:
            self.rows.append((kind, now[0] - self.t[0], now[1] - self.t[1]))
        self.t, self.refreshes = now, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--domains", default="random:64")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--round-steps", type=int, default=None)
    ap.add_argument("--probe-steps", type=int, default=None, help="default: DoGraph's, min(16, R)")
    ap.add_argument("--clusters", type=int, default=11)
    args = ap.parse_args()
    preset = "tiny" if args.quick else "gpt2-small"
    steps = args.steps or (100 if args.quick else 200)
    R = args.round_steps or (32 if args.quick else 50)
    run = bench_config(preset, steps, domains=args.domains, log_every=10**9)
    data = prepare_data(run)
    model = run.model.build(data.tokenizer.vocab_size, 0)
    names = data.train.names
    method = build_method("dograph", {"round_steps": R, "probe_steps": args.probe_steps,
                                      "clusters": args.clusters})
    args.probe_steps = method.config.probe
    mixing = MixingCallback(method, Domains(names, data.train.tokens_per_domain.astype(float), data.target))
    clock = StepClock(mixing)
    sampler = MixtureSampler(data.train.num_sequences, np.ones(len(names)), seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(run.train, model, data.train, sampler, tmp, None, [mixing, clock], data.fingerprints())
        trainer.domain_evaluator = Evaluator(data.domain_eval)  # the validation sketches' sequences
        trainer.fit()
    rows = clock.rows[3:]  # skip the first steps (allocation, warm caches)
    tokens = steps * 16 * data.train.context_length
    flops = mixing.total_extra()["sketch_flops"] / (6 * count_parameters(model) * tokens)
    counts = {k: sum(r[0] == k for r in rows) for k in ("plain", "probe", "refresh")}
    for col, label in ((1, "wall"), (2, "process CPU")):
        med = {k: statistics.median([r[col] for r in rows if r[0] == k]) for k in counts}
        extra = ((med["probe"] - med["plain"]) * args.probe_steps + (med["refresh"] - med["plain"])) / (R * med["plain"])
        print(f"{preset}, {args.domains}, R={R}, probe_steps={args.probe_steps}, m={args.clusters}, {label} time: "
              f"median step plain {med['plain'] * 1e3:.1f} ms, probe {med['probe'] * 1e3:.1f} ms, "
              f"refresh {med['refresh'] * 1e3:.1f} ms (steps: {counts}) -> ratio {1 + extra:.4f}")
    print(f"sketch FLOPs / (6 N D) = {flops:.5f}")
    print(f"overhead: {1 + extra:.4f}  (process CPU time)")


if __name__ == "__main__":
    main()

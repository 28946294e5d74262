"""Shared by the benchmarks: time the training loop's steps with a given mixing method."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from domix.balance.base import Domains, build_method
from domix.balance.callback import MixingCallback
from domix.data.sampler import MixtureSampler
from domix.run import RunConfig, RunData
from domix.train.callbacks import Callback
from domix.train.loop import Trainer


def bench_config(preset: str, steps: int, domains: str = "original", **train: Any) -> RunConfig:
    """The benchmarks' run: demo corpus, batch 16, no checkpoints, no evaluation inside the loop."""
    return RunConfig.from_dict({
        "data": {"domains": domains},
        "model": {"preset": preset},
        "train": {"steps": steps, "batch_size": 16, "log_every": 10, "checkpoint_every": 10**9,
                  "warmup_steps": 2, "progress": False, **train},
    })


def signal_bytes(mixing: MixingCallback) -> int:
    """Memory the open signal collectors hold (their saved state's tensors)."""
    return sum(
        t.numel() * t.element_size()
        for s in mixing.signals.values()
        for t in s.state_dict().values()
        if isinstance(t, torch.Tensor)
    )


class Timer(Callback):
    """Wall time from the start of step ``start_step`` to the end of the last step; at the last
    step (before the signals close at the end of training) ``capture(mixing)`` is kept. A
    ``profiler`` (torch.profiler.profile) records exactly the timed steps."""

    name = "timer"

    def __init__(self, start_step: int, mixing: MixingCallback, capture: Callable[[MixingCallback], Any],
                 profiler: torch.profiler.profile | None = None) -> None:
        self.start_step, self.t0, self.t1 = start_step, None, None
        self.mixing, self.capture, self.captured = mixing, capture, None
        self.profiler = profiler

    def on_step_start(self, trainer, step):
        if step == self.start_step:
            if self.profiler is not None:
                self.profiler.start()
            self.t0 = time.perf_counter()

    def on_step_end(self, trainer, step, out):
        if step == trainer.total_steps:
            self.t1 = time.perf_counter()
            if self.profiler is not None:
                self.profiler.stop()
            self.captured = self.capture(self.mixing)


def cpu_profiler() -> torch.profiler.profile:
    return torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])


def profile_table(profiles: dict[str, tuple[torch.profiler.profile, float]], top: int = 20) -> str:
    """The ops of two (or more) profiled loops side by side: calls and self CPU ms per loop, sorted by
    how much more the last loop spends than the first. ``profiles``: name -> (profiler, wall seconds
    of the profiled steps); the last row is the wall time no op accounts for (Python: the loop's
    own code, the sampler, callbacks)."""
    names = list(profiles)
    stats = {n: {e.key: (e.count, e.self_cpu_time_total / 1e3) for e in p.key_averages()} for n, (p, _) in profiles.items()}
    ops = set().union(*stats.values())
    def ms(n, op):
        return stats[n].get(op, (0, 0.0))[1]
    rows = sorted(ops, key=lambda op: ms(names[-1], op) - ms(names[0], op), reverse=True)
    rows = rows[:top] + [op for op in sorted(ops, key=lambda op: -max(ms(n, op) for n in names)) if op not in rows[:top]][:5]
    head = f"{'op':<44}" + "".join(f"{n + ' calls':>14}{n + ' ms':>14}" for n in names) + f"{'delta ms':>12}"
    lines = [head, "-" * len(head)]
    for op in rows:
        cells = "".join(f"{stats[n].get(op, (0, 0))[0]:>14}{ms(n, op):>14.1f}" for n in names)
        lines.append(f"{op[:44]:<44}{cells}{ms(names[-1], op) - ms(names[0], op):>12.1f}")
    total = {n: sum(v[1] for v in stats[n].values()) for n in names}
    outside = {n: profiles[n][1] * 1e3 - total[n] for n in names}
    for label, vals in (("all ops (self CPU)", total), ("wall - all ops (Python, host)", outside),
                        ("wall", {n: profiles[n][1] * 1e3 for n in names})):
        cells = "".join(f"{'':>14}{vals[n]:>14.1f}" for n in names)
        lines.append(f"{label:<44}{cells}{vals[names[-1]] - vals[names[0]]:>12.1f}")
    return "\n".join(lines)


def timed_run(
    run: RunConfig,
    data: RunData,
    warmup: int,
    out_dir: str,
    method: str = "stratified",
    params: dict[str, Any] | None = None,
    signals: dict[str, dict] | None = None,
    capture: Callable[[MixingCallback], Any] = signal_bytes,
    profiler: torch.profiler.profile | None = None,
) -> dict[str, Any]:
    """Train ``run.train.steps`` steps (no evaluation); time the steps after ``warmup``.

    Returns seconds, the method's result mixture, the callback, and ``captured`` (what ``capture``
    returned at the last step; by default the bytes the signals hold)."""
    cfg = run.train
    model = run.model.build(data.tokenizer.vocab_size, cfg.seed)
    names = data.train.names
    sampler = MixtureSampler(data.train.num_sequences, np.ones(len(names)), seed=cfg.seed)
    domains = Domains(names, data.train.tokens_per_domain.astype(float), data.target)
    mixing = MixingCallback(build_method(method, params), domains, signals)
    timer = Timer(warmup, mixing, capture, profiler)
    trainer = Trainer(
        cfg, model, data.train, sampler, out_dir, None, [mixing, timer], data.fingerprints()
    )
    trainer.domain_evaluator = None
    trainer.fit()
    return {
        "seconds": timer.t1 - timer.t0,
        "captured": timer.captured,
        "mixture": mixing.method.result(),
        "mixing": mixing,
    }

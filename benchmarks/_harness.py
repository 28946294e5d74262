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
    step (before the signals close at the end of training) ``capture(mixing)`` is kept."""

    name = "timer"

    def __init__(self, start_step: int, mixing: MixingCallback, capture: Callable[[MixingCallback], Any]) -> None:
        self.start_step, self.t0, self.t1 = start_step, None, None
        self.mixing, self.capture, self.captured = mixing, capture, None

    def on_step_start(self, trainer, step):
        if step == self.start_step:
            self.t0 = time.perf_counter()

    def on_step_end(self, trainer, step, out):
        if step == trainer.total_steps:
            self.t1 = time.perf_counter()
            self.captured = self.capture(self.mixing)


def timed_run(
    run: RunConfig,
    data: RunData,
    warmup: int,
    out_dir: str,
    method: str = "stratified",
    params: dict[str, Any] | None = None,
    signals: dict[str, dict] | None = None,
    capture: Callable[[MixingCallback], Any] = signal_bytes,
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
    timer = Timer(warmup, mixing, capture)
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

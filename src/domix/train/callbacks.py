"""Callbacks extend the training loop without editing it; each saves and restores its own state.

Hooks run in list order. ``on_step_start`` may change the sampler's weights (the mixture) or the
per-domain loss weights for the coming step; ``on_step_end`` sees the step's per-domain statistics.
A callback sees the loop through ``Loop``, the interface ``loop.Trainer`` implements, so this module
does not import the loop (the loop imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from ..data.packed import PackedDomains
from ..data.sampler import MixtureSampler
from .evaluate import EvalResult, Evaluator
from .metrics import MetricsSink


class Loop(Protocol):
    """What a callback sees of the training loop. It may change ``sampler``'s weights and
    ``loss_weights``; everything else is read-only to it."""

    cfg: Any  # the loop's TrainConfig
    model: torch.nn.Module  # the model itself (``forward_model`` is its DDP wrapper when distributed)
    forward_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train: PackedDomains
    sampler: MixtureSampler
    evaluator: Evaluator | None  # validation loss of the evaluation domains
    domain_evaluator: Evaluator | None  # validation loss of the training domains
    metrics: MetricsSink
    out_dir: Path
    step: int
    m: int  # training domains
    rank: int
    world_size: int
    distributed: bool
    context_length: int
    batch_BT: torch.Tensor | None  # the step's tokens [B, T+1]
    targets_BT: torch.Tensor | None  # the step's targets [B, T]; IGNORE where not trained (records)
    valid_BT: torch.Tensor | None  # which targets count; None = all (packed streams)
    loss_weights: torch.Tensor | None  # per-domain loss weights; None = token mean

    @property
    def wall_s(self) -> float: ...


@dataclass
class StepOutput:
    """What one training step measured (summed over ranks)."""

    loss: float  # the objective that was minimised
    domain_loss_sum: torch.Tensor  # [m] float64, sum of token losses per domain
    domain_tokens: torch.Tensor  # [m] float64, tokens per domain
    grad_norm: float
    lr: float


class Callback:
    """Hooks, in the order a step calls them: ``on_step_start`` (may change the mixture),
    ``on_batch`` (the step's domain ids, before the forward), ``on_loss`` (per-token losses, graph
    alive), ``backward`` (return True if it has put the gradients in ``.grad`` itself, replacing the
    default ``loss.backward()``), ``on_backward`` (gradients present, before clipping),
    ``on_step_end`` (the step's per-domain statistics)."""

    name: str = "callback"

    def on_train_start(self, trainer: Loop) -> None: ...

    def on_step_start(self, trainer: Loop, step: int) -> None: ...

    def on_batch(self, trainer: Loop, dom_B: torch.Tensor) -> None: ...

    def on_loss(self, trainer: Loop, loss_BT: torch.Tensor, dom_B: torch.Tensor) -> None: ...

    def backward(self, trainer: Loop, loss: torch.Tensor, loss_BT: torch.Tensor, dom_B: torch.Tensor) -> bool:
        return False

    def on_backward(self, trainer: Loop) -> None: ...

    def on_step_end(self, trainer: Loop, step: int, out: StepOutput) -> None: ...

    def on_eval(self, trainer: Loop, step: int, result: EvalResult) -> None: ...

    def on_train_end(self, trainer: Loop) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

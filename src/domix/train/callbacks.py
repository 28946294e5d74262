"""Callbacks extend the training loop without editing it; each saves and restores its own state.

Hooks run in list order. ``on_step_start`` may change the sampler's weights (the mixture) or the
per-domain loss weights for the coming step; ``on_step_end`` sees the step's per-domain statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .evaluate import EvalResult
    from .loop import Trainer


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

    def on_train_start(self, trainer: Trainer) -> None: ...

    def on_step_start(self, trainer: Trainer, step: int) -> None: ...

    def on_batch(self, trainer: Trainer, dom_B: torch.Tensor) -> None: ...

    def on_loss(self, trainer: Trainer, loss_BT: torch.Tensor, dom_B: torch.Tensor) -> None: ...

    def backward(self, trainer: Trainer, loss: torch.Tensor, loss_BT: torch.Tensor, dom_B: torch.Tensor) -> bool:
        return False

    def on_backward(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, step: int, out: StepOutput) -> None: ...

    def on_eval(self, trainer: Trainer, step: int, result: EvalResult) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

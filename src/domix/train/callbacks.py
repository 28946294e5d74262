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
    name: str = "callback"

    def on_train_start(self, trainer: Trainer) -> None: ...

    def on_step_start(self, trainer: Trainer, step: int) -> None: ...

    def on_step_end(self, trainer: Trainer, step: int, out: StepOutput) -> None: ...

    def on_eval(self, trainer: Trainer, step: int, result: EvalResult) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

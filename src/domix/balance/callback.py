"""The one piece of glue between a mixing method and the training loop.

It asks the method for a proposal, sets the sampler's weights (and loss weights), accumulates the
per-domain statistics of the steps the proposal is held for, and tells the method what it saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..train.callbacks import Callback, StepOutput
from ..types import Mixture
from .base import Domains, MixingMethod, Observation, Proposal

if TYPE_CHECKING:
    from ..train.loop import Trainer


class MixingCallback(Callback):
    name = "mixing"

    def __init__(self, method: MixingMethod, domains: Domains) -> None:
        self.method = method
        self.domains = domains
        self.proposal: Proposal | None = None
        self.remaining: int | None = None  # steps left in the current hold (None: forever)
        self.history: list[tuple[int, np.ndarray]] = []  # (step, weights) at every change
        self._pending: dict[str, Any] | None = None
        self._reset_round()

    def _reset_round(self) -> None:
        m = len(self.domains)
        self.loss_sum = np.zeros(m)
        self.tokens = np.zeros(m)
        self.steps = 0

    def on_train_start(self, trainer: Trainer) -> None:
        self.proposal = self.method.start(self.domains)
        self.remaining = self.proposal.hold_steps
        if self._pending is not None:  # resuming: the saved state overrides the fresh start
            state, self._pending = self._pending, None
            self.method.load_state_dict(state["method"])
            self.proposal = Proposal(
                Mixture(self.domains.names, state["weights"]),
                state["hold_steps"],
                frozenset(state["signals"]),
                state["loss_weights"],
            )
            self.remaining = state["remaining"]
            self.loss_sum, self.tokens, self.steps = (
                state["loss_sum"],
                state["tokens"],
                state["steps"],
            )
            self.history = [(s, np.asarray(w)) for s, w in state["history"]]
            self._apply(trainer, log=False)
        else:
            self._apply(trainer, log=True)

    def on_step_start(self, trainer: Trainer, step: int) -> None:
        if self.remaining is not None and self.remaining <= 0:
            train_loss = np.where(
                self.tokens > 0, self.loss_sum / np.maximum(self.tokens, 1), np.nan
            )
            obs = Observation(
                step=step, steps=self.steps, tokens=self.tokens.copy(), train_loss=train_loss
            )
            self.proposal = self.method.update(obs)
            self.remaining = self.proposal.hold_steps
            self._reset_round()
            self._apply(trainer, log=True)

    def on_step_end(self, trainer: Trainer, step: int, out: StepOutput) -> None:
        self.loss_sum += out.domain_loss_sum.numpy()
        self.tokens += out.domain_tokens.numpy()
        self.steps += 1
        if self.remaining is not None:
            self.remaining -= 1

    def _apply(self, trainer: Trainer, log: bool) -> None:
        p = self.proposal
        trainer.sampler.set_weights(p.weights.weights)
        trainer.loss_weights = (
            None if p.loss_weights is None else torch.as_tensor(p.loss_weights, dtype=torch.float64)
        )
        if log:
            self.history.append((trainer.step, p.weights.weights.copy()))
            trainer.metrics.log(
                trainer.step,
                "mix",
                {f"mix/weight/{d}": float(w) for d, w in p.weights.as_dict().items()},
            )

    def state_dict(self) -> dict[str, Any]:
        p = self.proposal
        return {
            "method": self.method.state_dict(),
            "weights": p.weights.weights.copy(),
            "hold_steps": p.hold_steps,
            "signals": sorted(p.signals),
            "loss_weights": None if p.loss_weights is None else np.asarray(p.loss_weights).copy(),
            "remaining": self.remaining,
            "loss_sum": self.loss_sum.copy(),
            "tokens": self.tokens.copy(),
            "steps": self.steps,
            "history": [(s, w.tolist()) for s, w in self.history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = state

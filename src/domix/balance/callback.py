"""The one piece of glue between a mixing method and the training loop.

It asks the method for a proposal, sets the sampler's weights (and loss weights), runs the signal
collectors the proposal asks for while it is held, and tells the method what they saw. At the end of
training it writes ``mixing.json`` (the weights over time, the result, extra compute, diagnostics).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import io
from ..config import ConfigError
from ..train.callbacks import Callback, StepOutput
from ..train.checkpoint import ResumeError
from ..types import Mixture
from .base import Domains, MixingMethod, Observation, Proposal, update_or_hold
from .signals import SIGNALS, Signal

if TYPE_CHECKING:
    from ..train.loop import Trainer


class MixingCallback(Callback):
    name = "mixing"

    def __init__(self, method: MixingMethod, domains: Domains, signal_configs: dict[str, dict] | None = None) -> None:
        self.method = method
        self.domains = domains
        self.signal_configs = signal_configs or {}
        self.signals: dict[str, Signal] = {}
        self.proposal: Proposal | None = None
        self.remaining: int | None = None  # steps left in the current hold (None: forever)
        self.history: list[tuple[int, np.ndarray]] = []  # (step, weights) at every change
        self.extra: Counter[str] = Counter()  # extra compute of closed signals
        self._pending: dict[str, Any] | None = None
        self._reset_round()

    def _reset_round(self) -> None:
        m = len(self.domains)
        self.loss_sum, self.tokens, self.steps = np.zeros(m), np.zeros(m), 0
        for s in self.signals.values():
            s.reset()

    def on_train_start(self, trainer: Trainer) -> None:
        records = getattr(trainer.train, "meta", {}).get("kind") == "records"  # a loss masked to the responses
        if records and (unready := sorted(n for n in self.method.signals if not SIGNALS.get(n).masked_loss)):
            raise ConfigError(f"mixing method '{type(self.method).__name__}' reads the signal(s) "
                              f"{', '.join(unready)}, which do not handle prompt/response records (a loss "
                              "masked to the responses) yet (a signal says it does with masked_loss = True)")
        self.proposal = self.method.start(self.domains)
        self.remaining = self.proposal.hold_steps
        if self._pending is None:
            self._apply(trainer, log=True)
            return
        state, self._pending = self._pending, None  # resuming: the saved state wins over start()
        if state.get("identity") != self._identity():
            raise ResumeError(f"refusing to resume: the checkpoint was written by mixing {state.get('identity')}, "
                              f"this run asks for {self._identity()}. Use a new out_dir.")
        self.method.load_state_dict(state["method"])
        self.proposal = Proposal(Mixture(self.domains.names, state["weights"]), state["hold_steps"],
                                 frozenset(state["signals"]), state["loss_weights"])
        self.remaining = state["remaining"]
        self.history = [(s, np.asarray(w)) for s, w in state["history"]]
        self.extra = Counter(state["extra"])
        self._apply(trainer, log=False)
        self.loss_sum, self.tokens, self.steps = state["loss_sum"], state["tokens"], state["steps"]
        for name, s in self.signals.items():
            s.load_state_dict(state["signal_states"][name])

    def on_step_start(self, trainer: Trainer, step: int) -> None:
        if self.remaining is None or self.remaining > 0:
            return
        train_loss = np.where(self.tokens > 0, self.loss_sum / np.maximum(self.tokens, 1), np.nan)
        values = {name: s.value(trainer) for name, s in self.signals.items()}
        obs = Observation(step, self.steps, self.tokens.copy(), train_loss, values)
        self.proposal, bad = update_or_hold(self.method, self.proposal, obs)
        if bad is not None:  # a NaN or inf never reaches the method: the mixture is held, counted
            self.extra["held_nonfinite"] += 1
            if trainer.rank == 0:
                print(f"step {step}: {bad} of the mixing signal is NaN or infinite; {type(self.method).__name__} "
                      f"did not update, the mixture is held ({self.extra['held_nonfinite']} so far)", flush=True)
        self.remaining = self.proposal.hold_steps
        self._apply(trainer, log=True)
        self._reset_round()

    def on_batch(self, trainer: Trainer, dom_B: torch.Tensor) -> None:
        for s in self.signals.values():
            s.on_batch(trainer, dom_B)

    def on_loss(self, trainer: Trainer, loss_BT: torch.Tensor, dom_B: torch.Tensor) -> None:
        for s in self.signals.values():
            s.on_loss(trainer, loss_BT, dom_B)

    def backward(self, trainer: Trainer, loss: torch.Tensor, loss_BT: torch.Tensor, dom_B: torch.Tensor) -> bool:
        return any(s.backward(trainer, loss, loss_BT, dom_B) for s in self.signals.values())

    def on_backward(self, trainer: Trainer) -> None:
        for s in self.signals.values():
            s.on_backward(trainer)

    def on_step_end(self, trainer: Trainer, step: int, out: StepOutput) -> None:
        self.loss_sum += out.domain_loss_sum.numpy()
        self.tokens += out.domain_tokens.numpy()
        self.steps += 1
        if self.remaining is not None:
            self.remaining -= 1
        for s in self.signals.values():
            s.on_step_end(trainer, out)

    def on_train_end(self, trainer: Trainer) -> None:
        self.method.finish(self.steps)
        for name in list(self.signals):
            self._close(name)
        if trainer.rank == 0:
            diag = getattr(self.method, "diagnostics", lambda: {})()
            io.write_json(trainer.out_dir / "mixing.json", {
                "domains": list(self.domains.names),
                "history": [{"step": s, "weights": w.tolist()} for s, w in self.history],
                "result": self.method.result().weights.tolist(),
                "extra_compute": dict(self.total_extra()),
                "diagnostics": diag,
            })

    def _identity(self) -> dict[str, Any]:
        """What a checkpoint's mixing state belongs to: the method, its parameters, signal settings."""
        return {"method": type(self.method).__name__, "params": self.method.config.to_dict(),
                "signals": self.signal_configs}

    def _close(self, name: str) -> None:
        s = self.signals.pop(name)
        self.extra.update(s.extra)
        s.close()

    def total_extra(self) -> Counter[str]:
        """This run's extra compute (signals) plus what the method's artifact cost to make."""
        total = self._run_extra()
        total.update(self.method.extra)
        return total

    def _run_extra(self) -> Counter[str]:
        total = Counter(self.extra)
        for s in self.signals.values():
            total.update(s.extra)
        return total

    def _apply(self, trainer: Trainer, log: bool) -> None:
        p = self.proposal
        trainer.sampler.set_weights(p.weights.weights)
        trainer.loss_weights = None if p.loss_weights is None else torch.as_tensor(p.loss_weights, dtype=torch.float64)
        for name in set(self.signals) - set(p.signals):  # stop collecting what is no longer asked for
            self._close(name)
        for name in sorted(set(p.signals) - set(self.signals)):
            cls = SIGNALS.get(name)
            cfg = cls.Config.from_dict(self.signal_configs.get(name, {}), _path=f"mixing.signals.{name}")
            self.signals[name] = cls(cfg, self.domains, trainer)
        if log:
            self.history.append((trainer.step, p.weights.weights.copy()))
            metrics = {f"mix/weight/{d}": float(w) for d, w in p.weights.as_dict().items()}
            metrics.update({f"mix/{k}": float(v) for k, v in p.info.items()})
            metrics.update({f"extra/{k}": float(v) for k, v in self.total_extra().items()})
            trainer.metrics.log(trainer.step, "mix", metrics)

    def state_dict(self) -> dict[str, Any]:
        p = self.proposal
        return {
            "identity": self._identity(),
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
            "extra": dict(self._run_extra()),  # collectors restart their own counts on resume
            "signal_states": {name: s.state_dict() for name, s in self.signals.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = state

"""Training signals a mixing method can ask for, collected from the training step's hooks.

A method names the signals it needs in its ``Proposal.signals``; the mixing callback builds one
collector per name (``SIGNALS`` registry, one file each), feeds it the step's hooks while the
proposal is held, and hands ``value()`` to the method in ``Observation.signals[name]``. Collectors
reduce across data-parallel ranks in ``value()``, so every rank's method sees the same numbers.
Per-signal settings come from the run config: ``mixing.signals: {<name>: {...}}``.

Collectors also count the extra compute they cost (``extra``: forward/backward passes, evaluation
tokens), which the callback adds up in the run's metrics.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ...config import Config
from ...registry import Registry

if TYPE_CHECKING:
    from ...train.callbacks import StepOutput
    from ...train.loop import Trainer
    from ..base import Domains


class Signal:
    Config: ClassVar[type[Config]] = Config
    # handles a loss masked to part of each sequence (prompt/response records: the responses);
    # the mixing callback refuses a signal without it on such data rather than misread it
    masked_loss: ClassVar[bool] = False

    def __init__(self, config: Config, domains: Domains, trainer: Trainer) -> None:
        self.config, self.domains = config, domains
        self.extra: Counter[str] = Counter()  # extra compute this signal caused, cumulative

    def on_batch(self, trainer: Trainer, dom_B: torch.Tensor) -> None: ...

    def on_loss(self, trainer: Trainer, loss_BT: torch.Tensor, dom_B: torch.Tensor) -> None: ...

    def backward(self, trainer: Trainer, loss: torch.Tensor, loss_BT: torch.Tensor, dom_B: torch.Tensor) -> bool:
        return False

    def on_backward(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, out: StepOutput) -> None: ...

    def value(self, trainer: Trainer) -> Any:
        """The signal over the held steps (called once, at the end of the hold)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Start a new hold."""

    def close(self) -> None:
        """Detach from the model and free memory."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


SIGNALS: Registry[type[Signal]] = Registry("training signal", package="domix.balance.signals")


def all_reduce_(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over data-parallel ranks in place (no-op in a single process)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(t)
    return t

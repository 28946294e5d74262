"""The mixing-method protocol: an ask/tell state machine over per-domain training signals.

A method never touches the model, optimizer, data loader or filesystem, so it can be tested with
plain arrays. The training loop reaches it through one callback (``balance.callback``):

    method = build_method("stratified", params={})
    proposal = method.start(domains)            # weights to train on, for how long, what to collect
    ... train proposal.hold_steps steps, collecting proposal.signals ...
    proposal = method.update(observation)       # per-domain statistics of those steps
    method.result()                              # the mixture a later run should use

Every method registers by name in ``METHODS`` (one file in ``balance/methods/``) and declares a
``Config`` dataclass for its parameters, loaded strictly from ``mixing.params``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..config import Config
from ..registry import Registry
from ..types import Mixture


@dataclass(frozen=True, eq=False)
class Domains:
    """What a method knows about the domains before training."""

    names: tuple[str, ...]
    tokens: np.ndarray  # training tokens per domain
    target: np.ndarray | None = None  # pbar: share of evaluation documents per domain, if known
    # pbar when every evaluation domain weighs the same (the macro loss): the mean over evaluation
    # domains of the share of its evaluation documents in each domain; uniform when they coincide
    target_macro: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.names)


@dataclass(eq=False)
class Proposal:
    """What to train on next. ``hold_steps=None`` holds the weights to the end of training."""

    weights: Mixture
    hold_steps: int | None = None
    signals: frozenset[str] = frozenset()
    loss_weights: np.ndarray | None = None  # per-domain objective weights; None = token mean
    info: dict[str, float] = field(default_factory=dict)  # logged as mix/<key> (events, diagnostics)


@dataclass(eq=False)
class Observation:
    """Per-domain statistics of the steps a proposal was held for.

    ``train_loss`` is the token-mean training loss per domain over those steps (NaN for a domain
    with no tokens); ``tokens`` counts them. ``signals`` holds what the proposal asked for, by name.
    """

    step: int
    steps: int
    tokens: np.ndarray
    train_loss: np.ndarray
    signals: dict[str, Any] = field(default_factory=dict)


class MixingMethod:
    """Base class: subclasses set ``Config`` and implement ``start`` and ``update``."""

    Config: ClassVar[type[Config]] = Config
    signals: ClassVar[frozenset[str]] = frozenset()  # what the method reads (for `domix methods`)
    reference: ClassVar[str] = ""
    cost: ClassVar[str] = ""  # extra compute beyond the training run, in words (for `domix methods`)
    static: ClassVar[bool] = False  # weights fixed before training (reads no training signal)

    def __init__(self, config: Config | None = None) -> None:
        self.config = config if config is not None else self.Config()
        self.domains: Domains | None = None
        self._current: Mixture | None = None
        # compute spent before this run to make what the method reads (a multi-stage pipeline's
        # runs, carried in its artifact); set by start(), added to the run's extra compute
        self.extra: Counter[str] = Counter()

    def start(self, domains: Domains) -> Proposal:
        raise NotImplementedError

    def update(self, obs: Observation) -> Proposal:
        raise NotImplementedError

    def finish(self, steps: int) -> None:
        """Training ended ``steps`` steps into the current hold (no update follows them)."""

    def result(self) -> Mixture:
        """The mixture to use in a later run (static methods: their weights)."""
        if self._current is None:
            raise RuntimeError("result() before start()")
        return self._current

    def state_dict(self) -> dict[str, Any]:
        return {"current": None if self._current is None else self._current.weights.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("current") is not None and self.domains is not None:
            self._current = Mixture(self.domains.names, state["current"])


METHODS: Registry[type[MixingMethod]] = Registry("mixing method", package="domix.balance.methods")


def build_method(name: str, params: dict[str, Any] | None = None) -> MixingMethod:
    cls = METHODS.get(name)
    return cls(cls.Config.from_dict(params or {}, _path="mixing.params"))


def nonfinite(obs: Observation) -> str | None:
    """What in ``obs`` is NaN or infinite (a domain with no tokens may have a NaN loss), or None."""
    tokens = np.asarray(obs.tokens, dtype=np.float64)
    if not np.all(np.isfinite(tokens)) or np.any(tokens < 0):
        return "tokens"
    loss = np.asarray(obs.train_loss, dtype=np.float64)
    if not np.all(np.isfinite(loss[tokens > 0])):
        return "train_loss"
    for name, value in obs.signals.items():
        for key, arr in (value.items() if isinstance(value, dict) else [("", value)]):
            a = np.asarray(arr)
            if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
                return f"{name}{'.' + key if key else ''}"
    return None


def update_or_hold(method: MixingMethod, current: Proposal, obs: Observation) -> tuple[Proposal, str | None]:
    """``method.update(obs)``, unless ``obs`` holds a NaN or infinite value: then the method does not
    see it (its state is untouched), the current proposal is held for another period, and the second
    value names what was not finite (the caller counts and reports it)."""
    bad = nonfinite(obs)
    if bad is not None:
        return current, bad
    return method.update(obs), None

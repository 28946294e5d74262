"""Aioli (Chen et al., "Aioli: A Unified Optimization Framework for Language Model Data Mixing",
ICLR 2025, arXiv 2411.05735).

Aioli models the drop of each domain's validation loss over a round as linear in the mixture,
L_i(t+1) ~= L_i(t) - sum_j A_ij p_j, estimates A online with short probe runs inside each round,
and follows exponentiated gradient on the estimate:

    probe j (for each domain j, random order, ``sweeps`` times): train ``probe_steps`` steps on the
      smoothed one-hot mixture q_j = f e_j + (1 - f)/(m - 1) (1 - e_j), evaluate, and add the drop
      of every domain's validation loss to column j of B                     B_ij += L_i^before - L_i^after
    B /= sweeps;  A = B Q^-T (Q_j = q_j: row i of A solves Q a = B_i)       (A = B when f = 1)
    A <- (A - min(A, 0)) / sum(A - min(A, 0))                                  (shift >= 0, normalise)
    log p_j += eta * sum_i A_ij;  train the rest of the round on p

Symbols -> variables: f = ``one_hot_factor``, eta = ``eta``, Q = ``self.Q``, B = ``self.B``,
p = ``self.weights`` (its log in ``self.log_w``), round length = ``round_steps``.

Follows the paper and the authors' code (github.com/HazyResearch/aioli, ``trainer/aioli_trainer.py``,
``LearnParams``): probe order is a fresh random permutation per sweep; drops are measured from the
previous evaluation (each probe starts where the last one ended); the linear solve for f != 1; the
shift-and-normalise (``aioli_normalize_A``); the multiplicative update from uniform; the optional
``ema`` of A (then p = exp(eta * sum_i EMA(A)_ij), not accumulated, as in the code). The probe steps
are real training steps of the run and count toward its length. Defaults: eta 0.2, 4 sweeps x 4
steps, f = 0.625 (the brief's values; the code's scripts use e.g. eta 0.1, 4 x 6, f 0.5, ema 0.5).

Where domix chooses (the protocol asks for the evaluation at the end of a hold):
- A round is ``[train on p_t for round_steps - P steps, evaluate] -> [P probe steps, evaluating after
  each probe] -> p_{t+1}``, P = sweeps * probe_steps * m: the evaluation that opens the paper's
  round is the one that closes the previous stretch on p. The first stretch, on uniform p_0, is the
  code's optional static "prior" phase. ``round_steps`` must exceed P (a clear error otherwise).
- A domain whose validation loss is NaN (no validation sequences) contributes no drop (0).
- m = 1: nothing to mix; the single domain is trained on to the end.
- ``result()``: the latest p (the method is online; the probes average to uniform and the last
  stretch on p is never reported back, so a step average would hide what was learned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...config import Config, ConfigError
from ...types import Mixture
from ..base import METHODS, Domains, MixingMethod, Observation, Proposal

SIGNAL = "eval_loss"


@dataclass
class AioliConfig(Config):
    round_steps: int = 500  # one round: the stretch on p plus the probes
    eta: float = 0.2
    sweeps: int = 4  # passes through the m domains in each round's probes
    probe_steps: int = 4  # training steps per probe
    one_hot_factor: float = 0.625  # f
    ema: float | None = None  # EMA of A across rounds (the code's --ema); None = off
    seed: int = 0  # probe order

    def validate(self) -> None:
        if min(self.round_steps, self.sweeps, self.probe_steps) < 1:
            raise ConfigError("mixing.params: round_steps, sweeps and probe_steps must be at least 1")
        if not 0.0 < self.one_hot_factor <= 1.0:
            raise ConfigError("mixing.params.one_hot_factor must be in (0, 1]")
        if self.ema is not None and not 0.0 <= self.ema < 1.0:
            raise ConfigError("mixing.params.ema must be in [0, 1)")


def probe_mixtures(m: int, f: float) -> np.ndarray:
    """Q [m, m]: row j is the smoothed one-hot mixture of probe j."""
    if m == 1:
        return np.ones((1, 1))
    Q = np.full((m, m), (1.0 - f) / (m - 1))
    np.fill_diagonal(Q, f)
    return Q


def normalise(A: np.ndarray) -> np.ndarray:
    """Shift to non-negative (if any entry is negative) and divide by the sum (the code's rule)."""
    A = A - min(A.min(), 0.0)
    total = A.sum()
    return A / total if total > 0 else np.zeros_like(A)


@METHODS.register("aioli")
class Aioli(MixingMethod):
    Config = AioliConfig
    signals = frozenset({SIGNAL})
    reference = "Chen et al. 2025, Aioli (ICLR 2025, arXiv 2411.05735)"
    cost: ClassVar[str] = "1 + sweeps*m validation evaluations per round; probe steps are training steps"

    def start(self, domains: Domains) -> Proposal:
        self.domains = domains
        m, cfg = len(domains), self.config
        self.probe_total = cfg.sweeps * cfg.probe_steps * m
        if m > 1 and cfg.round_steps <= self.probe_total:
            raise ConfigError(
                f"mixing.params.round_steps={cfg.round_steps} leaves no steps on the mixture: the probes "
                f"take sweeps*probe_steps*m = {cfg.sweeps}*{cfg.probe_steps}*{m} = {self.probe_total} steps. "
                "Raise round_steps or lower sweeps / probe_steps."
            )
        if m > 1 and abs(cfg.one_hot_factor - 1.0 / m) < 1e-9:
            raise ConfigError(f"mixing.params.one_hot_factor=1/m={1 / m:.3g} makes every probe the same mixture")
        self.Q = probe_mixtures(m, cfg.one_hot_factor)
        self.rng = np.random.Generator(np.random.PCG64(cfg.seed))
        self.log_w = np.zeros(m)
        self.weights = np.full(m, 1.0 / m)
        self.rounds = 0
        self.ema_A: np.ndarray | None = None
        self.order: list[int] = []  # probe order of the current round; empty: training on p
        self.probe = 0  # index into order of the probe being trained
        self.B = np.zeros((m, m))
        self.prev_loss = np.zeros(m)
        self.history: list[dict[str, Any]] = []
        self._current = Mixture(domains.names, self.weights)
        return self._proposal()

    def update(self, obs: Observation) -> Proposal:
        if len(self.domains) == 1:
            return self._proposal()
        loss = np.asarray(obs.signals[SIGNAL], dtype=np.float64)
        if not self.order:  # the stretch on p ended: its evaluation opens the probes
            self.order = [int(j) for _ in range(self.config.sweeps) for j in self.rng.permutation(len(self.domains))]
            self.probe, self.B = 0, np.zeros_like(self.B)
        else:
            j = self.order[self.probe]
            self.B[:, j] += np.nan_to_num(self.prev_loss - loss, nan=0.0, posinf=0.0, neginf=0.0)
            self.probe += 1
            if self.probe == len(self.order):
                self._update_weights()
                self.order = []
        self.prev_loss = loss
        return self._proposal()

    def _update_weights(self) -> None:
        B = self.B / self.config.sweeps
        A_raw = np.linalg.solve(self.Q, B.T).T  # row i: Q a = B_i  (B = A Q^T)
        A = normalise(A_raw)
        if self.config.ema is None:
            self.log_w = self.log_w + self.config.eta * A.sum(0)
        else:
            self.ema_A = A if self.ema_A is None else (1 - self.config.ema) * A + self.config.ema * self.ema_A
            self.log_w = self.config.eta * self.ema_A.sum(0)
        w = np.exp(self.log_w - self.log_w.max())
        self.weights = w / w.sum()
        self.rounds += 1
        self.history.append({"B": B.tolist(), "A_raw": A_raw.tolist(), "A": A.tolist(), "weights": self.weights.tolist()})

    def _proposal(self) -> Proposal:
        m, cfg = len(self.domains), self.config
        if m == 1:
            self._current = Mixture(self.domains.names, np.ones(1))
            return Proposal(self._current)
        if self.order:
            j = self.order[self.probe]
            self._current = Mixture(self.domains.names, self.Q[j])
            return Proposal(self._current, cfg.probe_steps, frozenset({SIGNAL}), info={"probe": float(j)})
        self._current = Mixture(self.domains.names, self.weights)
        return Proposal(self._current, cfg.round_steps - self.probe_total, frozenset({SIGNAL}),
                        info={"probe": -1.0, "rounds": float(self.rounds)})

    def result(self) -> Mixture:
        return Mixture(self.domains.names, self.weights)

    def diagnostics(self) -> dict[str, Any]:
        return {"probe_mixtures": self.Q.tolist(), "rounds": self.history}

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state, "log_w": self.log_w.copy(), "weights": self.weights.copy(),
            "rounds": self.rounds,
            "ema_A": None if self.ema_A is None else self.ema_A.copy(), "order": list(self.order),
            "probe": self.probe, "B": self.B.copy(), "prev_loss": self.prev_loss.copy(),
            "history": list(self.history), "current": self._current.weights.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.log_w = np.asarray(state["log_w"], dtype=np.float64).copy()
        self.weights = np.asarray(state["weights"], dtype=np.float64).copy()
        self.rounds = int(state["rounds"])
        self.ema_A = None if state["ema_A"] is None else np.asarray(state["ema_A"], dtype=np.float64).copy()
        self.order, self.probe = [int(j) for j in state["order"]], int(state["probe"])
        self.B = np.asarray(state["B"], dtype=np.float64).copy()
        self.prev_loss = np.asarray(state["prev_loss"], dtype=np.float64).copy()
        self.history = list(state["history"])
        self._current = Mixture(self.domains.names, state["current"])

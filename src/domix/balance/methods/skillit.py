"""Skill-It's online data selection (Chen et al., "Skill-it! A Data-Driven Skills Framework for
Understanding and Training Language Models", NeurIPS 2023, Alg. 1).

A skills graph A (A_ij: how much training on domain i lowers the evaluation loss of domain j) is
learned first from m short single-domain runs (``domix mix skillit``,
``domix/pipelines/skillit.py``). Training then runs in rounds of K steps; after each round the
validation loss of every domain is measured (``eval_loss`` signal) and the next round trains on

    p_i  proportional to  prior_i * exp(eta * sum_j A_ij * sum_{tau = t-w+1..t} L_j(tau))

with eta = 0.2 and a window of w = 3 evaluations: the weights are recomputed from the prior every
round (multiplicative weights over a window, not accumulated).

Symbols -> variables: A = ``self.graph``, eta = ``eta``, w = ``window``, K = ``round_steps``,
L_j(tau) = ``self.losses`` (one vector per round), prior = uniform.

Follows the paper and the public code (HazyResearch/skill-it, ``mw_trainer.py``): eta 0.2,
window 3, weights = prior * exp(eta * A @ windowed loss sum), prior uniform; the first round uses
A @ 1 in place of losses (the code's ``loss_init`` = the initial weights, all ones); with no graph
A = I, as the code does when no graph is given.
domix chooses:
- K = 100 steps by default (the public scripts update about ten times per run).
- No evaluation before the first step: the first window entry is the first round's end.
- A domain whose validation loss is NaN (no validation tokens) contributes 0 to the sums.
- The graph is read from the JSON ``domix mix skillit`` writes (``graph`` A[i][j] over
  ``domains``, rows = trained domain); its compute (the m extra runs) is carried into this run's
  extra compute. ``result()`` is the step-weighted average of the mixtures trained on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import io
from ...config import Config, ConfigError
from ...types import Mixture
from ..base import METHODS, Domains, MixingMethod, Observation, Proposal

SIGNAL = "eval_loss"


@dataclass
class SkillItConfig(Config):
    graph: str | None = None  # skills graph JSON from `domix mix skillit`; None: A = identity
    eta: float = 0.2
    window: int = 3  # evaluations summed
    round_steps: int = 100  # K

    def validate(self) -> None:
        if self.window < 1 or self.round_steps < 1:
            raise ConfigError("mixing.params.window and round_steps must be at least 1")


def load_graph(path: str, names: tuple[str, ...]) -> tuple[np.ndarray, Counter[str]]:
    """A [m, m] ordered like ``names``, and the compute it cost (from the artifact)."""
    data = io.read_json(path)
    known = list(data["domains"])
    if sorted(known) != sorted(names):
        raise ConfigError(f"{path}: the skills graph is over domains {known[:8]}, this run trains on "
                          f"{list(names)[:8]}; learn the graph on the same data.domains")
    order = [known.index(n) for n in names]
    A = np.asarray(data["graph"], dtype=np.float64)[np.ix_(order, order)]
    return A, Counter(data.get("extra_compute", {}))


@METHODS.register("skillit")
class SkillIt(MixingMethod):
    Config = SkillItConfig
    signals = frozenset({SIGNAL})
    reference = "Chen et al. 2023, Skill-it! (NeurIPS 2023, arXiv 2307.14430)"
    cost = "m single-domain runs (`domix mix skillit`) + 1 eval pass/round"

    def start(self, domains: Domains) -> Proposal:
        self.domains = domains
        m = len(domains)
        if self.config.graph:
            self.graph, self.extra = load_graph(self.config.graph, domains.names)
        else:
            self.graph = np.eye(m)
        self.losses: list[np.ndarray] = []
        self.weight_steps = np.zeros(m)
        self._set(self.graph @ np.ones(m))
        return self._proposal()

    def update(self, obs: Observation) -> Proposal:
        self.weight_steps += self._current.weights * obs.steps
        self.losses.append(np.nan_to_num(np.asarray(obs.signals[SIGNAL], np.float64), nan=0.0))
        self.losses = self.losses[-self.config.window:]
        self._set(self.graph @ np.sum(self.losses, axis=0))
        return self._proposal()

    def _set(self, drive: np.ndarray) -> None:
        z = self.config.eta * drive
        w = np.exp(z - z.max())
        self._current = Mixture(self.domains.names, w / w.sum())

    def _proposal(self) -> Proposal:
        return Proposal(self._current, self.config.round_steps, frozenset({SIGNAL}))

    def result(self) -> Mixture:
        if self.weight_steps.sum() == 0:
            return self._current
        return Mixture(self.domains.names, self.weight_steps)

    def diagnostics(self) -> dict[str, Any]:
        return {"graph": self.graph.tolist()}

    def state_dict(self) -> dict[str, Any]:
        return {"current": self._current.weights.copy(), "losses": [x.copy() for x in self.losses],
                "weight_steps": self.weight_steps.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._current = Mixture(self.domains.names, state["current"])
        self.losses = [np.asarray(x, np.float64) for x in state["losses"]]
        self.weight_steps = np.asarray(state["weight_steps"], np.float64).copy()

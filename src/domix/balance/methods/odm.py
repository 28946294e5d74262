"""ODM: Online Data Mixing as a multi-armed bandit (Albalak et al., "Efficient Online Data Mixing
For Language Model Pre-Training", arXiv 2312.02406, 2023).

Each domain is an arm; the reward of an arm is how much the model still has to learn from it,
read from the training loss it already computes (no extra forward, backward or evaluation). After
every step t, for each domain i in the batch:

    R_i     <- alpha * R_i + (1 - alpha) * r_i                  (smoothed reward)
    eps_t    = min(1/m, sqrt(ln m / (m t)))                     (exploration rate, decays)
    pi_t,i   = (1 - m eps_t) * q_i + eps_t                      (every domain keeps >= eps_t)

Symbols -> variables: alpha = ``smoothing``, R = ``self.reward``, eps_t = ``self.eps``,
pi = ``self.weights``, t = ``self.t`` (steps seen), q = the exploitation distribution below.

Two policies (``mixing.params.policy``), both from the authors' public code
(github.com/alon-albalak/online-data-mixing, ``megatron/data/data_sampling_utils.py``):

- ``smoothed_mean`` (default; the code's ``SmoothedMeanWeightUpdater.group_update``, the variant
  its mixed-minibatch runs use): r_i = exp(L_i), the per-domain perplexity of the step's batch,
  and q_i = R_i / sum_j R_j. No importance weighting: with mixed minibatches every domain with
  positive weight is observed at every step, so there is no unobserved arm to correct for.
- ``exp3`` (Algorithm 1 of the paper, the code's ``Exp3WeightUpdater``): the importance-weighted
  cumulative reward R_i <- R_i + (L_i / scale) / pi_i (the code's reward scaling divides by 10 so
  the cumulative sum does not explode), and the Gibbs policy q = softmax(eps_{t-1} * R).

Where the paper and code are silent, domix chooses:
- p_0 is uniform (the code starts from the given prior weights; with eps_1 = 1/m the first policy
  is uniform anyway).
- A domain absent from a step (no tokens) keeps its reward (the code only updates domains present
  in the batch). Before any reward is seen (all R = 0) the exploitation part is uniform.
- m = 1: eps = 0 and the only domain has weight 1.
- ``result()``: the step-averaged mixture (ODM is online; a later static run has no natural
  choice, and the average is what the run actually trained on).
- The warm-up and update frequency of the code's scheduler are not used: ODM updates every step
  (``hold_steps = 1``), the paper's setting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from ...config import Config, ConfigError
from ...types import Mixture
from ..base import METHODS, Domains, MixingMethod, Observation, Proposal


@dataclass
class ODMConfig(Config):
    policy: Literal["smoothed_mean", "exp3"] = "smoothed_mean"
    smoothing: float = 0.9  # alpha (smoothed_mean)
    reward_scale: float = 10.0  # exp3: rewards are divided by this (public code)

    def validate(self) -> None:
        if not 0.0 <= self.smoothing < 1.0:
            raise ConfigError("mixing.params.smoothing must be in [0, 1)")
        if self.reward_scale <= 0:
            raise ConfigError("mixing.params.reward_scale must be positive")


def exploration(m: int, t: int) -> float:
    """eps_t = min(1/m, sqrt(ln m / (m t))); eps_0 = 1/m."""
    if m <= 1:
        return 0.0
    return 1.0 / m if t <= 0 else min(1.0 / m, math.sqrt(math.log(m) / (m * t)))


@METHODS.register("odm")
class ODM(MixingMethod):
    Config = ODMConfig
    signals = frozenset()
    reference = "Albalak et al. 2023, Efficient Online Data Mixing (arXiv 2312.02406)"
    cost: ClassVar[str] = "none: reads the per-domain training loss of each step"

    def start(self, domains: Domains) -> Proposal:
        self.domains = domains
        m = len(domains)
        self.t = 0
        self.eps = exploration(m, 0)
        self.reward = np.zeros(m)
        self.weights = np.full(m, 1.0 / m)
        self.weight_steps = np.zeros(m)
        self._current = Mixture(domains.names, self.weights)
        return Proposal(self._current, 1, info={"eps": self.eps})

    def update(self, obs: Observation) -> Proposal:
        m = len(self.domains)
        self.weight_steps += self.weights * obs.steps
        present = (obs.tokens > 0) & np.isfinite(obs.train_loss)
        loss = np.where(present, obs.train_loss, 0.0)
        self.t += 1
        prev_eps, self.eps = self.eps, exploration(m, self.t)
        if self.config.policy == "smoothed_mean":
            a = self.config.smoothing
            self.reward[present] = a * self.reward[present] + (1 - a) * np.exp(np.minimum(loss[present], 700.0))
            total = self.reward.sum()
            q = self.reward / total if total > 0 else np.full(m, 1.0 / m)
        else:
            self.reward[present] += loss[present] / self.config.reward_scale / self.weights[present]
            z = prev_eps * self.reward
            q = np.exp(z - z.max())
            q /= q.sum()
        self.weights = (1.0 - m * self.eps) * q + self.eps
        self.weights /= self.weights.sum()
        self._current = Mixture(self.domains.names, self.weights)
        return Proposal(self._current, 1, info={"eps": self.eps})

    def result(self) -> Mixture:
        if self.weight_steps.sum() == 0:
            return self._current
        return Mixture(self.domains.names, self.weight_steps)

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "eps": self.eps, "reward": self.reward.copy(), "weights": self.weights.copy(),
                "weight_steps": self.weight_steps.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.eps = int(state["t"]), float(state["eps"])
        self.reward = np.asarray(state["reward"], dtype=np.float64).copy()
        self.weights = np.asarray(state["weights"], dtype=np.float64).copy()
        self.weight_steps = np.asarray(state["weight_steps"], dtype=np.float64).copy()
        self._current = Mixture(self.domains.names, self.weights)

"""DoReMi's proxy run (Xie et al., "DoReMi: Optimizing Data Mixtures Speeds Up Language Model
Pretraining", NeurIPS 2023, Alg. 1): Group DRO over domains with an excess-loss objective.

The whole method is three stages (``domix mix doremi``, ``domix/pipelines/doremi.py``): a
reference model trained on the reference mixture, this proxy run, and a final run on the static
mixture this run's ``result()`` returns. During the proxy run, after every step t:

    lambda_i   = (1 / |tokens of i|) sum_t max(l_theta(t) - l_ref(t), 0)      (per-token excess loss)
    alpha'_t   = alpha_{t-1} * exp(eta * lambda)            then normalised
    alpha_t    = (1 - c) alpha'_t + c / m                  (smoothing: every weight >= c / m)
    objective  = sum_i alpha_t,i * L_i(theta)             (L_i: token-mean loss of domain i in the batch)
    output     = (1 / T) sum_t alpha_t                      (time average, the static mixture)

The batches are sampled from the reference mixture throughout; alpha only weights the loss.

Symbols -> variables: eta = ``eta``, c = ``smoothing``, alpha_t = ``self.alpha``, lambda =
``self.score``, the time average = ``self.alpha_sum / self.updates``; l_ref comes from the
``excess_loss`` signal (one extra forward pass of the frozen reference per step).

Follows the paper: eta = 1, c = 1e-3, alpha_0 uniform, per-token clipping before the domain mean,
multiplicative update of the smoothed weights, time-averaged output.
Follows the public port (sangmichaelxie/doremi, ``doremiv1``): a domain with no tokens in the step
keeps its previous excess score (initially 0) instead of scoring 0.
domix chooses:
- The update for step t's batch is applied at the start of step t + 1 (the method sees a step's
  statistics once it is over), so alpha lags by one step relative to the paper, where the weights
  of step t already include step t's excess loss.
- ``update_every`` (default 1, the paper) can batch several steps into one update; the excess loss
  is then the token mean over those steps.
- The reference mixture is ``sample``: stratified (default, the paper's uniform GLaM setting) or
  proportional (natural token shares).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ...config import Config, ConfigError
from ...types import Mixture
from ..base import METHODS, Domains, MixingMethod, Observation, Proposal

SIGNAL = "excess_loss"


@dataclass
class DoReMiConfig(Config):
    eta: float = 1.0  # step size of the multiplicative update
    smoothing: float = 1e-3  # c: mass spread uniformly, every weight >= c / m
    sample: Literal["stratified", "proportional"] = "stratified"  # the reference mixture
    update_every: int = 1  # steps per weight update

    def validate(self) -> None:
        if self.eta <= 0:
            raise ConfigError("mixing.params.eta must be positive")
        if not 0 <= self.smoothing <= 1:
            raise ConfigError("mixing.params.smoothing must be in [0, 1]")
        if self.update_every < 1:
            raise ConfigError("mixing.params.update_every must be at least 1")


@METHODS.register("doremi")
class DoReMi(MixingMethod):
    Config = DoReMiConfig
    signals = frozenset({SIGNAL})
    reference = "Xie et al. 2023, DoReMi (NeurIPS 2023, arXiv 2305.10429)"
    cost = "reference + proxy runs (`domix mix doremi`); proxy: +1 forward/step"

    def start(self, domains: Domains) -> Proposal:
        self.domains = domains
        m = len(domains)
        tokens = np.asarray(domains.tokens, dtype=np.float64)
        use_tokens = self.config.sample == "proportional" and tokens.sum() > 0
        self.sample = Mixture(domains.names, tokens if use_tokens else np.full(m, 1.0 / m))
        self.alpha = np.full(m, 1.0 / m)
        self.score = np.zeros(m)
        self.alpha_sum, self.updates = np.zeros(m), 0
        self._current = self.sample
        return self._proposal({})

    def update(self, obs: Observation) -> Proposal:
        sig = obs.signals[SIGNAL]
        excess, tokens = np.asarray(sig["excess"], np.float64), np.asarray(sig["tokens"], np.float64)
        present = tokens > 0
        self.score = np.where(present, excess / np.maximum(tokens, 1.0), self.score)
        logits = np.log(self.alpha) + self.config.eta * self.score
        new = np.exp(logits - logits.max())
        new /= new.sum()
        m, c = len(new), self.config.smoothing
        self.alpha = (1.0 - c) * new + c / m
        self.alpha_sum += self.alpha
        self.updates += 1
        return self._proposal({"absent_domains": float((~present).sum()),
                               "max_alpha": float(self.alpha.max())})

    def _proposal(self, info: dict[str, float]) -> Proposal:
        return Proposal(self.sample, self.config.update_every, frozenset({SIGNAL}),
                        loss_weights=self.alpha.copy(), info=info)

    def result(self) -> Mixture:
        """The time-averaged domain weights (alpha_0 before any update)."""
        if self.updates == 0:
            return Mixture(self.domains.names, self.alpha)
        return Mixture(self.domains.names, self.alpha_sum / self.updates)

    def diagnostics(self) -> dict[str, Any]:
        return {"final_alpha": self.alpha.tolist(), "last_excess": self.score.tolist(),
                "updates": self.updates}

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha.copy(), "score": self.score.copy(),
                "alpha_sum": self.alpha_sum.copy(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.alpha = np.asarray(state["alpha"], np.float64).copy()
        self.score = np.asarray(state["score"], np.float64).copy()
        self.alpha_sum = np.asarray(state["alpha_sum"], np.float64).copy()
        self.updates = int(state["updates"])

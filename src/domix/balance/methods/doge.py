"""DoGE: Domain reweighting with Generalization Estimation (Fan et al., "DoGE: Domain Reweighting
with Generalization Estimation", ICML 2024, arXiv 2310.15393).

A proxy run that learns domain weights alpha by how well each domain's gradient aligns with the
gradient of the target (generalisation) objective, by mirror descent on the simplex, every step:

    s_i      = lr_t * <g_i, g_val> / mean_j ||g_j||,   clipped to [lr_t * dw_min, lr_t * dw_max]
    alpha_t  = softmax(log alpha_{t-1} + s / mu)
    step     : the model follows sum_i alpha_i g_i
    output   : the time average of alpha_t (a static mixture for the final run)

Symbols -> variables: g_i / g_val / lr_t come from the ``grad_alignment`` signal (per-domain
gradients of the whole model, a validation-batch gradient, the step's learning rate); mu = ``mu``;
alpha = ``self.weights``; the running sum of alpha = ``self.weight_sum``.

Follows the paper and the authors' code (github.com/Olivia-fsm/DoGE, ``src/trainer.py``,
``update_domain_weights``): the score normalisation by the mean gradient norm, the clip
[0, 5 lr_t], the softmax of log-weights plus s / mu (mu 0.05, the code's default; its
``config/doge.json`` uses 0.01), data sampled uniformly and the weights applied to the gradient,
the output being the average of alpha over steps. Full-model gradients, as in the code's default
(no ``selected_modules``).

Where domix chooses:
- The target gradient is that of a validation batch drawn with the target shares pbar from the
  training domains' validation split (METHODS.md; the paper's out-of-domain setting uses a target
  domain's data). For the universal-generalisation setting the code instead scores each domain
  against the sum of the *other* training domains' gradients of the same batch; that variant is
  not implemented here.
- The step uses alpha_{t-1} (the weights in force, given to the loop as ``loss_weights``); the code
  uses alpha_t computed from the same step's gradients. The one-step lag keeps the method an
  ask/tell object that never touches gradients.
- A domain absent from a step (no tokens, so no gradient) keeps its weight; the softmax is taken
  over the present domains and scaled to the remaining mass (the code reuses a stale gradient).
- No per-domain gradient clipping (the code clips each domain's gradient as a side effect of
  computing it); the loop clips the combined gradient as for every method.
- m = 1: nothing to reweight; no signal is collected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...config import Config, ConfigError
from ...types import Mixture
from ..base import METHODS, Domains, MixingMethod, Observation, Proposal

SIGNAL = "grad_alignment"


@dataclass
class DoGEConfig(Config):
    mu: float = 0.05
    dw_min: float = 0.0  # score clip, in units of lr_t
    dw_max: float = 5.0

    def validate(self) -> None:
        if self.mu <= 0:
            raise ConfigError("mixing.params.mu must be positive")
        if self.dw_min > self.dw_max:
            raise ConfigError("mixing.params.dw_min must not exceed dw_max")


@METHODS.register("doge")
class DoGE(MixingMethod):
    Config = DoGEConfig
    signals = frozenset({SIGNAL})
    reference = "Fan et al. 2024, DoGE (ICML 2024, arXiv 2310.15393)"
    cost: ClassVar[str] = "m+1 backward passes and 1 forward pass per step (per-domain + validation gradients)"

    def start(self, domains: Domains) -> Proposal:
        self.domains = domains
        m = len(domains)
        self.sampling = Mixture.uniform(domains.names)
        self.weights = np.full(m, 1.0 / m)
        self.weight_sum = np.zeros(m)
        self.updates = 0
        self._current = self.sampling
        return self._proposal({})

    def update(self, obs: Observation) -> Proposal:
        if len(self.domains) == 1:
            return self._proposal({})
        sig = obs.signals[SIGNAL]
        cfg = self.config
        info: dict[str, float] = {}
        for align, norm, present, lr in zip(sig["align"], sig["norm"], sig["present"], sig["lr"]):
            present = np.asarray(present, dtype=bool)
            if not present.any():
                continue
            scale = float(np.mean(np.asarray(norm)[present])) + 1e-6
            s = lr * np.asarray(align, dtype=np.float64)[present] / scale
            s = np.clip(s, lr * cfg.dw_min, lr * cfg.dw_max)
            logits = np.log(self.weights[present]) + s / cfg.mu
            soft = np.exp(logits - logits.max())
            new = self.weights.copy()
            new[present] = soft / soft.sum() * self.weights[present].sum()
            self.weights = new / new.sum()
            self.weight_sum += self.weights
            self.updates += 1
            info = {"absent_domains": float((~present).sum())}
        return self._proposal(info)

    def _proposal(self, info: dict[str, float]) -> Proposal:
        if len(self.domains) == 1:
            return Proposal(self.sampling)
        return Proposal(self.sampling, 1, frozenset({SIGNAL}), loss_weights=self.weights.copy(), info=info)

    def result(self) -> Mixture:
        if self.updates == 0:
            return Mixture(self.domains.names, self.weights)
        return Mixture(self.domains.names, self.weight_sum / self.updates)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.copy(), "weight_sum": self.weight_sum.copy(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = np.asarray(state["weights"], dtype=np.float64).copy()
        self.weight_sum = np.asarray(state["weight_sum"], dtype=np.float64).copy()
        self.updates = int(state["updates"])

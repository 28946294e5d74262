"""R&B's Balance step (Ge et al., "R&B: Domain Regrouping and Data Mixture Balancing for Efficient
Foundation Model Training", arXiv 2505.00358, Alg. 1).

Rounds of K steps. During round t the model trains on batches drawn with p_t while the final
layer's gradient of every domain's examples is summed into g_i (``domain_grad_gram`` signal, from
the ordinary backward: no extra forward, backward or evaluation). At the end of the round

    G_ij    = <g_i, g_j> / (|S_i| |S_j|)                 (Gram of per-domain mean gradients)
    p_{t+1} = softmax(lambda * G pbar / ||G pbar||_2)     (overwritten, not accumulated)

with p_0 uniform, lambda = 3 (the paper's value) and pbar the share of evaluation documents per
domain (``Domains.target``: the Regroup assignment of the validation documents, or the original
labels when training on original domains).

Symbols -> variables: K = ``round_steps``, lambda = ``temperature``, g_i / |S_i| = ``gram`` and
``counts`` of the signal, pbar = ``self.target``, p_t = ``self.weights``.

Where the paper is silent, domix chooses (and logs each event as ``mix/<event>``):
- K: 50 steps by default (the paper does not state it).
- |S_i| counts examples (packed sequences of one domain), not tokens; every sequence has the same
  number of tokens, so this only rescales G by a constant.
- A domain with no examples in a round has no gradient: it keeps its previous weight, and the
  softmax is taken over the domains present, scaled to the remaining mass (``mix/absent_domains``).
- If G pbar = 0 over the present domains (a target no training domain covers, or all-zero
  gradients), the norm is zero: the previous mixture is kept (``mix/gpbar_zero`` = 1).
- ``result()`` (the mixture a later static run would use) is the step-weighted average of the
  mixtures trained on; the online run itself follows p_t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...config import Config, ConfigError
from ...types import Mixture
from ..base import METHODS, Domains, MixingMethod, Observation, Proposal

SIGNAL = "domain_grad_gram"


@dataclass
class RnBConfig(Config):
    round_steps: int = 50  # K
    temperature: float = 3.0  # lambda

    def validate(self) -> None:
        if self.round_steps < 1:
            raise ConfigError("mixing.params.round_steps must be at least 1")


@METHODS.register("rnb")
class RnB(MixingMethod):
    Config = RnBConfig
    signals = frozenset({SIGNAL})
    reference = "Ge et al. 2025, R&B (arXiv 2505.00358)"
    cost = "none: per-domain LM-head gradients from the normal backward"

    def start(self, domains: Domains) -> Proposal:
        self.domains = domains
        m = len(domains)
        target = np.full(m, 1.0 / m) if domains.target is None else np.asarray(domains.target, dtype=np.float64)
        self.target = target / target.sum()
        self.weights = np.full(m, 1.0 / m)
        self.weight_steps = np.zeros(m)  # sum over rounds of weights * steps, for result()
        self.grams: list[list[list[float]]] = []
        self._current = Mixture(domains.names, self.weights)
        return self._proposal({})

    def update(self, obs: Observation) -> Proposal:
        self.weight_steps += self.weights * obs.steps
        sig = obs.signals[SIGNAL]
        gram, counts = np.asarray(sig["gram"], dtype=np.float64), np.asarray(sig["counts"], dtype=np.float64)
        present = counts > 0
        G = np.zeros_like(gram)
        G[np.ix_(present, present)] = gram[np.ix_(present, present)] / np.outer(counts[present], counts[present])
        self.grams.append(G.tolist())
        info = {"absent_domains": float((~present).sum()), "gpbar_zero": 0.0}
        v = G @ self.target
        norm = float(np.linalg.norm(v[present])) if present.any() else 0.0
        if norm == 0.0 or not np.isfinite(norm):
            info["gpbar_zero"] = 1.0
            return self._proposal(info)
        logits = self.config.temperature * v[present] / norm
        soft = np.exp(logits - logits.max())
        new = self.weights.copy()
        new[present] = soft / soft.sum() * (1.0 - self.weights[~present].sum())
        self.weights = new
        self._current = Mixture(self.domains.names, new)
        return self._proposal(info)

    def finish(self, steps: int) -> None:
        self.weight_steps += self.weights * steps  # the last round counts in result() too

    def _proposal(self, info: dict[str, float]) -> Proposal:
        return Proposal(self._current, self.config.round_steps, frozenset({SIGNAL}), info=info)

    def result(self) -> Mixture:
        if self.weight_steps.sum() == 0:
            return self._current
        return Mixture(self.domains.names, self.weight_steps)

    def diagnostics(self) -> dict[str, Any]:
        return {"target": self.target.tolist(), "gram_per_round": self.grams}

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.copy(), "weight_steps": self.weight_steps.copy(), "grams": list(self.grams)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = np.asarray(state["weights"], dtype=np.float64)
        self.weight_steps = np.asarray(state["weight_steps"], dtype=np.float64)
        self.grams = list(state["grams"])
        self._current = Mixture(self.domains.names, self.weights)

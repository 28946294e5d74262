"""R&B's Balance step (Ge et al., "R&B: Domain Regrouping and Data Mixture Balancing for Efficient
Foundation Model Training", arXiv 2505.00358, Alg. 1).

Rounds of K steps. During round t the model trains on batches drawn with p_t while the final
layer's gradient of every domain's examples is summed into g_i (``domain_grad_gram`` signal, from
the ordinary backward: no extra forward, backward or evaluation). At the end of the round

    G_ij    = <g_i, g_j> / (|S_i| |S_j|)                 (Gram of per-domain mean gradients)
    p_{t+1} = softmax(lambda * G pbar / ||G pbar||_2)     (overwritten, not accumulated)

with p_0 uniform and lambda = 3 (the paper's value). Symbols -> variables: K = ``round_steps``,
lambda = ``temperature``, g_i / |S_i| = ``gram`` and ``counts`` of the signal, pbar = ``self.target``,
p_t = ``self.weights``.

The paper's rule exactly: ``{target: documents, step: 1, min_weight: 0}`` (``gram: plugin`` and
``gram_ema: 0`` are defaults). Where the paper is silent, domix chooses; each choice is a parameter
and the defaults were chosen by a sweep on the demo corpus (docs/benchmarks.md, "R&B: diagnosis";
why the paper's rule swings there: docs/methods.md):
- K: 50 steps by default (the paper does not state it).
- ``target`` (pbar). The paper uses the share of evaluation documents per domain
  (``documents``). domix reports the macro loss over the original domains (each weighs the same),
  so ``macro`` (default) is the pbar of that metric: the mean over evaluation domains of the share
  of its validation documents in each training domain (uniform when training on the evaluation
  domains themselves). ``Domains.target`` / ``Domains.target_macro``. With ``documents`` a domain
  of few, short documents (the demo's dialogue) is read at a fraction of the weight the metric
  gives it and starved in every round.
- ``step`` (eta, default 0.25; the paper: 1, an overwrite) and ``min_weight`` (f, default 0.05; the
  paper: 0): p_{t+1} = (1 - eta) p_t + eta q, q_i = f + (1 - k f) softmax_i over the k present
  domains. The normalised softmax sets a ~10x weight ratio from one round's estimate whatever the
  evidence, and a domain trained at a high weight loses most of its gradient by the next round, so
  the overwrite flips the mixture every round; the step damps that, the floor keeps every domain
  learning.
- ``gram`` (default ``plugin``, the paper's). Its diagonal is biased upwards: with n_i examples,
  E <g_i, g_i> / n_i^2 = ||mu_i||^2 + tr(Cov_i) / n_i, so a domain that got few examples looks as if
  its gradient were large. ``unbiased`` keeps the off-diagonal terms (examples of two domains are
  independent) and replaces the diagonal by (<g_i, g_i> - sum_s ||g_is||^2) / (n_i^2 - sum_s n_is^2)
  over the round's steps s, the cross terms of distinct steps only (the signal's ``sq`` and ``n2``;
  a domain seen in one step keeps the plug-in value). It needs the signal's ``self_terms: true``
  (one more pass over every block; a clear error says so). Measured, it did not help.
- ``gram_ema`` (beta, default 0: each round's Gram alone, the paper's): G as a moving average over
  rounds. Measured, it freezes the mixture near round 1's (G's scale falls tenfold in a run, so the
  first rounds dominate the average).
- |S_i| counts examples (packed sequences of one domain), not tokens; every sequence has the same
  number of tokens, so this only rescales G by a constant.
- A domain with no examples in a round has no gradient: it keeps its previous weight, and the
  softmax is taken over the domains present, scaled to the remaining mass (``mix/absent_domains``).
- If G pbar = 0 over the present domains (a target no training domain covers, or all-zero
  gradients), the norm is zero: the previous mixture is kept (``mix/gpbar_zero`` = 1).
- ``result()`` (the mixture a later static run would use) is the step-weighted average of the
  mixtures trained on; the online run itself follows p_t.

Every round is logged in ``diagnostics()["rounds"]`` (mixing.json): its number and step, examples
per domain, the Gram used, G pbar, the new weights and their L1 change from the previous round; the
same round's scalars go to metrics.jsonl as ``mix/<key>`` (``_record``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ...config import Config, ConfigError
from ...types import Mixture
from ..base import METHODS, Domains, MixingMethod, Observation, Proposal

SIGNAL = "domain_grad_gram"


@dataclass
class RnBConfig(Config):
    round_steps: int = 50  # K
    temperature: float = 3.0  # lambda
    gram: Literal["plugin", "unbiased"] = "plugin"  # the Gram's diagonal (see the module docstring)
    target: Literal["macro", "documents"] = "macro"  # pbar; the paper: documents
    step: float = 0.25  # eta: p <- (1 - eta) p + eta q; the paper: 1 (overwrite)
    min_weight: float = 0.05  # floor of q on every present domain; the paper: 0
    gram_ema: float = 0.0  # beta: G <- beta G_prev + (1 - beta) G_round; 0 uses the round alone (the paper)

    def validate(self) -> None:
        if self.round_steps < 1:
            raise ConfigError("mixing.params.round_steps must be at least 1")
        if not 0.0 < self.step <= 1.0:
            raise ConfigError("mixing.params.step must be in (0, 1]")
        if not 0.0 <= self.min_weight < 1.0:
            raise ConfigError("mixing.params.min_weight must be in [0, 1)")
        if not 0.0 <= self.gram_ema < 1.0:
            raise ConfigError("mixing.params.gram_ema must be in [0, 1)")


@METHODS.register("rnb")
class RnB(MixingMethod):
    Config = RnBConfig
    signals = frozenset({SIGNAL})
    reference = "Ge et al. 2025, R&B (arXiv 2505.00358)"
    cost = "none: per-domain LM-head gradients from the normal backward"

    def start(self, domains: Domains) -> Proposal:
        self.domains = domains
        m = len(domains)
        target = domains.target_macro if self.config.target == "macro" else domains.target
        target = np.full(m, 1.0 / m) if target is None else np.asarray(target, dtype=np.float64)
        self.target = target / target.sum()
        self.weights = np.full(m, 1.0 / m)
        self.weight_steps = np.zeros(m)  # sum over rounds of weights * steps, for result()
        self.rounds: list[dict[str, Any]] = []  # per round: step, counts, gram, gpbar, weights
        self.gram_avg = np.zeros((m, m))  # the smoothed Gram (gram_ema > 0)
        self.seen = np.zeros(m, dtype=bool)  # domains present in some earlier round
        self._current = Mixture(domains.names, self.weights)
        return self._proposal({})

    def update(self, obs: Observation) -> Proposal:
        self.weight_steps += self.weights * obs.steps
        sig = obs.signals[SIGNAL]
        counts = np.asarray(sig["counts"], dtype=np.float64)
        present = counts > 0
        G = self._smooth(self._gram(sig, present, self.config.gram), present)
        v = G @ self.target
        # the rule reads only G pbar's direction: computed from G / max|G|, it is the same for any scale
        # of the gradients, without overflow (huge) or underflow to 0 (tiny) in the product and the norm
        scale = float(np.abs(G).max()) if G.size else 0.0
        u = (G / scale) @ self.target if 0.0 < scale < np.inf else v
        previous = self.weights
        info = {"absent_domains": float((~present).sum()), "gpbar_zero": 0.0}
        norm = float(np.linalg.norm(u[present])) if present.any() else 0.0
        if norm == 0.0 or not np.isfinite(norm):
            info["gpbar_zero"] = 1.0
        else:
            self.weights = self._next(u, norm, present)
            self._current = Mixture(self.domains.names, self.weights)
        l1 = float(np.abs(self.weights - previous).sum())
        # both diagonals, whichever G used: their difference is the sampling-noise term tr(Cov_i) / n_i
        diag = {f"diag_{kind}": np.diag(self._gram(sig, present, kind)).tolist()
                for kind in ("plugin", "unbiased") if kind == "plugin" or "sq" in sig}
        self.rounds.append({"round": len(self.rounds) + 1, "step": obs.step, "counts": counts.tolist(),
                            "gram": G.tolist(), "gpbar": v.tolist(), "weights": self.weights.tolist(), "l1_change": l1,
                            **diag})
        return self._proposal({**info, **self._record(G, v, l1)})

    def _smooth(self, G: np.ndarray, present: np.ndarray) -> np.ndarray:
        """The exponential moving average of G over rounds (entries of domains seen before; the
        first sighting is taken as it is), restricted to the domains present in this round."""
        both = np.outer(present, present)
        known = both & np.outer(self.seen, self.seen)
        beta = self.config.gram_ema
        self.gram_avg = np.where(known, beta * self.gram_avg + (1 - beta) * G, np.where(both, G, self.gram_avg))
        self.seen |= present
        return np.where(both, self.gram_avg, 0.0)

    def _next(self, v: np.ndarray, norm: float, present: np.ndarray) -> np.ndarray:
        """softmax(lambda G pbar / ||G pbar||) over the present domains (their share of the mass),
        floored at ``min_weight``, reached by a step of size ``step`` from the current weights."""
        cfg = self.config
        logits = cfg.temperature * v[present] / norm
        soft = np.exp(logits - logits.max())
        soft /= soft.sum()
        k = int(present.sum())
        if cfg.min_weight > 0:
            floor = min(cfg.min_weight, 1.0 / k)
            soft = floor + (1.0 - k * floor) * soft  # the floored softmax, still on the simplex
        new = self.weights.copy()
        new[present] = soft * (1.0 - self.weights[~present].sum())
        return new if cfg.step == 1.0 else (1.0 - cfg.step) * self.weights + cfg.step * new

    def _record(self, G: np.ndarray, v: np.ndarray, l1: float) -> dict[str, float]:
        """The round as metrics (``mix/<key>`` in metrics.jsonl, next to ``mix/weight/<domain>``):
        its number, the L1 change of the weights, G's diagonal and G pbar per domain, and a summary
        of G's off-diagonal entries and cosines."""
        m = len(G)
        d = np.sqrt(np.clip(np.diag(G), 0.0, None))
        off = ~np.eye(m, dtype=bool)
        cos = G / np.where(np.outer(d, d) > 0, np.outer(d, d), np.inf)
        rec = {"round": float(len(self.rounds)), "l1_change": l1}
        if m > 1:
            rec.update({"gram_offdiag_mean": float(G[off].mean()), "gram_offdiag_min": float(G[off].min()),
                        "gram_offdiag_max": float(G[off].max()), "gram_cos_mean": float(cos[off].mean())})
        for name, g, gp in zip(self.domains.names, np.diag(G), v):
            rec[f"gram_diag/{name}"] = float(g)
            rec[f"gpbar/{name}"] = float(gp)
        return rec

    @staticmethod
    def _gram(sig: dict[str, Any], present: np.ndarray, kind: str) -> np.ndarray:
        """G over the domains present in the round (zero elsewhere), plug-in or with the unbiased
        diagonal (``kind``)."""
        raw, counts = np.asarray(sig["gram"], dtype=np.float64), np.asarray(sig["counts"], dtype=np.float64)
        G = np.zeros_like(raw)
        both = np.ix_(present, present)
        G[both] = raw[both] / np.outer(counts[present], counts[present])
        if kind == "unbiased":
            if "sq" not in sig:
                raise ConfigError("rnb gram: unbiased needs each step's block norms: set "
                                  "mixing.signals.domain_grad_gram.self_terms=true")
            den = counts**2 - np.asarray(sig["n2"], dtype=np.float64)
            ok = present & (den > 0)  # seen in two steps or more
            G[ok, ok] = (np.diag(raw)[ok] - np.asarray(sig["sq"], dtype=np.float64)[ok]) / den[ok]
        return G

    def finish(self, steps: int) -> None:
        self.weight_steps += self.weights * steps  # the last round counts in result() too

    def _proposal(self, info: dict[str, float]) -> Proposal:
        return Proposal(self._current, self.config.round_steps, frozenset({SIGNAL}), info=info)

    def result(self) -> Mixture:
        if self.weight_steps.sum() == 0:
            return self._current
        return Mixture(self.domains.names, self.weight_steps)

    def diagnostics(self) -> dict[str, Any]:
        return {"target": self.target.tolist(), "rounds": self.rounds}

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.copy(), "weight_steps": self.weight_steps.copy(), "rounds": list(self.rounds),
                "gram_avg": self.gram_avg.copy(), "seen": self.seen.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = np.asarray(state["weights"], dtype=np.float64)
        self.weight_steps = np.asarray(state["weight_steps"], dtype=np.float64)
        self.rounds = list(state["rounds"])
        self.gram_avg = np.asarray(state.get("gram_avg", self.gram_avg), dtype=np.float64)
        self.seen = np.asarray(state.get("seen", self.seen), dtype=bool)
        self._current = Mixture(self.domains.names, self.weights)

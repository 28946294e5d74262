"""``domix mix mixing_laws``: data-mixing laws (Ye et al., "Data Mixing Laws: Optimizing Data
Mixtures by Predicting Language Modeling Performance", ICLR 2025, arXiv 2403.16952).

1. Sweep: ``runs`` small runs (the run config, ``steps`` each), run r on mixture p_r over the m
   training domains; observe the validation loss L_i of every evaluation domain i.
2. Fit, per evaluation domain i, the law (the paper's Eq. for multiple domains)

       L_i(p) = a_i * exp(sum_j p_j M_ji) + b_i

   by least squares (Levenberg-Marquardt over a_i, b_i, M_:i, several starts).
3. Minimise the predicted target, the mean over evaluation domains of L_i(p) (the macro loss of the
   evaluation protocol), over the simplex (exponentiated gradient from uniform) -> ``mixture.json``.

Symbols -> variables: a = ``a`` [n_eval], b = ``b`` [n_eval], M = ``M`` [m, n_eval] (M[j, i] = M_ji).

The law is invariant to adding a constant k to a column M_:i while dividing a_i by e^k (the
weights sum to one), so domix reports the gauge where every column of M has mean 0.
domix chooses (the paper fixes neither): the sweep mixtures are drawn uniformly from the simplex
(Dirichlet(1), seeded); ``runs`` defaults to 2 (m + 2) so each law has twice as many points as
parameters; the fit and the minimisation are plain numpy (no SciPy needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import Config, ConfigError
from ..types import Mixture
from . import PIPELINES, Artifact, Pipeline, require_eval


@dataclass
class MixingLawsConfig(Config):
    runs: int | None = None  # sweep size; default 2 (m + 2)
    steps: int | None = None  # per sweep run; default: the run config's
    seed: int = 0


def predict(P_NM: np.ndarray, a: np.ndarray, b: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Predicted losses [N, n_eval] for mixtures P [N, m]."""
    return a[None, :] * np.exp(P_NM @ M) + b[None, :]


def _fit_one(P: np.ndarray, y: np.ndarray, rng: np.random.Generator, starts: int = 8,
             iters: int = 300) -> tuple[float, float, np.ndarray, float]:
    """Least squares of y ~ a exp(P t) + b by Levenberg-Marquardt; returns a, b, t, residual SS."""
    N, m = P.shape
    best = (0.0, float(y.mean()), np.zeros(m), float(((y - y.mean()) ** 2).sum()))
    for s in range(starts):
        t = np.zeros(m) if s == 0 else rng.normal(0, 1.0, m)
        e = np.exp(P @ t)
        A = np.stack([e, np.ones(N)], 1)
        (a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
        theta = np.concatenate([[a, b], t])
        lam = 1e-3

        def resid(th):
            return th[0] * np.exp(P @ th[2:]) + th[1] - y

        r = resid(theta)
        cost = float(r @ r)
        for _ in range(iters):
            e = np.exp(P @ theta[2:])
            J = np.concatenate([e[:, None], np.ones((N, 1)), (theta[0] * e)[:, None] * P], 1)
            H, g = J.T @ J, J.T @ r
            step = np.linalg.lstsq(H + lam * np.diag(np.diag(H) + 1e-9), -g, rcond=None)[0]
            cand = theta + step
            rc = resid(cand)
            new = float(rc @ rc) if np.all(np.isfinite(rc)) else np.inf
            if new < cost:
                theta, r, cost, lam = cand, rc, new, max(lam / 3, 1e-12)
                if cost < 1e-24 or np.abs(step).max() < 1e-12:
                    break
            else:
                lam *= 4
                if lam > 1e12:
                    break
        if cost < best[3]:
            best = (float(theta[0]), float(theta[1]), theta[2:].copy(), cost)
    return best


def fit_laws(P_NM: np.ndarray, L_NE: np.ndarray, seed: int = 0):
    """Fit the law for every evaluation domain: a [E], b [E], M [m, E] (column means 0), R^2 [E]."""
    P_NM, L_NE = np.asarray(P_NM, np.float64), np.asarray(L_NE, np.float64)
    rng = np.random.default_rng(seed)
    E, m = L_NE.shape[1], P_NM.shape[1]
    a, b, M, r2 = np.zeros(E), np.zeros(E), np.zeros((m, E)), np.zeros(E)
    for i in range(E):
        ai, bi, ti, ss = _fit_one(P_NM, L_NE[:, i], rng)
        shift = ti.mean()  # gauge: column mean 0, absorbed into a
        a[i], b[i], M[:, i] = ai * np.exp(shift), bi, ti - shift
        tot = float(((L_NE[:, i] - L_NE[:, i].mean()) ** 2).sum())
        r2[i] = 1.0 - ss / tot if tot > 0 else 1.0
    return a, b, M, r2


def minimise(a: np.ndarray, b: np.ndarray, M: np.ndarray, weights: np.ndarray | None = None,
             iters: int = 5000) -> np.ndarray:
    """argmin over the simplex of sum_i weights_i L_i(p), by exponentiated gradient from uniform."""
    m, E = M.shape
    wt = np.full(E, 1.0 / E) if weights is None else np.asarray(weights, np.float64)
    p = np.full(m, 1.0 / m)

    def f(p):
        return float(predict(p[None, :], a, b, M)[0] @ wt)

    lr = 1.0
    val = f(p)
    for _ in range(iters):
        grad = M @ (wt * a * np.exp(p @ M))
        z = np.log(np.maximum(p, 1e-300)) - lr * grad / max(np.abs(grad).max(), 1e-12)
        q = np.exp(z - z.max())
        q /= q.sum()
        new = f(q)
        if new <= val:
            p, val = q, new
        else:
            lr /= 2
            if lr < 1e-10:
                break
    return p


@PIPELINES.register("mixing_laws")
class MixingLaws(Pipeline):
    Config = MixingLawsConfig
    name = "mixing_laws"
    reference = "Ye et al. 2025, Data Mixing Laws (ICLR 2025, arXiv 2403.16952)"
    cost = "2 (m + 2) small sweep runs (default) + a fit"

    def run(self) -> Artifact:
        c = self.config
        self.begin()
        names = self.data.train.names
        m = len(names)
        n = c.runs or 2 * (m + 2)
        if n < m + 2:
            raise ConfigError(f"mix.mixing_laws.runs: the law has {m + 2} parameters per domain; "
                              f"give at least {m + 2} runs")
        P = np.random.default_rng(c.seed).dirichlet(np.ones(m), size=n)
        losses, eval_names = [], None
        for r, p in enumerate(P):
            weights = {d: float(w) for d, w in zip(names, p)}
            summary = self.train_stage(f"sweep-{r:03d}", {"method": "fixed", "params": {"weights": weights}},
                                       c.steps)
            ev = require_eval(summary, f"sweep-{r:03d}")["per_domain"]
            eval_names = list(ev)
            losses.append([ev[d] for d in eval_names])
        L = np.asarray(losses)
        a, b, M, r2 = fit_laws(P, L, c.seed)
        w = minimise(a, b, M)
        mixture = Mixture(names, w)
        path = self.out / "mixture.json"
        return self.finish("mixture.json", mixture, ["mixing.method=fixed", f"mixing.params.path={path}"],
                           eval_domains=eval_names, a=a.tolist(), b=b.tolist(), M=M.tolist(),
                           r2=r2.tolist(), sweep=P.tolist(), sweep_loss=L.tolist(),
                           predicted_macro=float(predict(w[None, :], a, b, M)[0].mean()))

"""``domix mix regmix``: RegMix (Liu et al., "RegMix: Data Mixture as Regression for Language Model
Pre-training", ICLR 2025).

1. Swarm: ``runs`` small proxy runs (the run config, ``steps`` each), run r on a mixture p_r drawn
   from Dirichlet(prior * s) around the token prior; the target y_r is the run's validation loss
   (``target``: the macro average over evaluation domains by default, or one domain's loss).
2. Regression y = f(p): LightGBM when installed (``pip install lightgbm``, the paper's choice),
   else linear least squares (the paper's linear baseline).
3. Search: predict ``candidates`` = 100,000 mixtures from the same sampler, average the ``top_k``
   = 128 with the lowest prediction; that average is the artifact ``mixture.json``.

Follows the public code (sail-sg/regmix, ``synthesize_mixture.py``): prior = token shares ** 0.5
(temperature), renormalised; Dirichlet strength s chosen at random among 15 values log-spaced in
[0.1, 5]; rejection of mixtures that would repeat a domain more than 15 times its token share
(``max_usage``, bound computed from the untempered prior); weights below ``minimum`` set to 0 and
rounded to multiples of it; duplicates dropped. LightGBM: 1,000 trees, learning rate 0.01.
domix chooses: LightGBM's ``min_child_samples`` = min(20, max(2, runs // 4)) so a small swarm can
still split (LightGBM's default 20 needs hundreds of runs); the candidates are drawn by the same
sampler without rounding; the linear fallback regresses on the mixture weights with an intercept
(minimum-norm solution, the weights sum to one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..config import Config, ConfigError
from ..types import Mixture
from . import PIPELINES, Artifact, Pipeline, dirichlet_mixtures, require_eval


@dataclass
class RegMixConfig(Config):
    runs: int = 32  # proxy runs in the swarm (the paper: 512 for 17 domains)
    steps: int | None = None  # per proxy run; default: the run config's
    target: str = "macro"  # macro, token_average, worst, or an evaluation domain's name
    regressor: Literal["auto", "lightgbm", "linear"] = "auto"
    candidates: int = 100_000
    top_k: int = 128
    temperature: float = 0.5
    min_strength: float = 0.1
    max_strength: float = 5.0
    max_usage: float = 15.0
    minimum: float = 2e-4
    seed: int = 0

    def validate(self) -> None:
        if self.runs < 2 or self.top_k < 1 or self.candidates < self.top_k:
            raise ConfigError("mix.regmix: need runs >= 2 and candidates >= top_k >= 1")


def swarm_sampler(prior: np.ndarray, cfg: RegMixConfig, rng: np.random.Generator, n: int,
                  round_: bool = True) -> np.ndarray:
    """``n`` distinct mixtures around ``prior`` (token shares), as the public code samples them."""
    prior = np.asarray(prior, np.float64) / np.sum(prior)
    bound = np.minimum(prior * cfg.max_usage, 1.0)
    tempered = prior ** cfg.temperature
    tempered /= tempered.sum()
    strengths = np.logspace(np.log10(cfg.min_strength), np.log10(cfg.max_strength), 15)
    chunks: list[np.ndarray] = []
    total = 0
    for _ in range(200):  # rounds of proposals; rejection rarely needs more than one
        x = dirichlet_mixtures(rng, tempered, max(4 * n, 1024), strengths)
        x = x[(x <= bound[None, :] + 1e-12).all(1)]
        if round_:
            x = np.where(x < cfg.minimum, 0.0, x)
            x = x[x.sum(1) > 0]
            x = np.round(x / x.sum(1, keepdims=True) / cfg.minimum) * cfg.minimum
            x = x[x.sum(1) > 0]
            x /= x.sum(1, keepdims=True)
            chunks = [np.unique(np.round(np.concatenate([*chunks, x]), 10), axis=0)]
            total = len(chunks[0])
        else:
            chunks.append(x)
            total += len(x)
        if total >= n:
            break
    if total < n:
        raise ConfigError(f"mix.regmix: could not draw {n} distinct mixtures within max_usage")
    out = np.concatenate(chunks)
    return out[rng.permutation(len(out))[:n]]


def fit_regressor(X: np.ndarray, y: np.ndarray, kind: str = "auto", seed: int = 0):
    """y ~ f(X): LightGBM when ``kind`` is lightgbm (or auto and installed), else linear."""
    if kind in ("auto", "lightgbm"):
        try:
            import lightgbm
        except ImportError:
            if kind == "lightgbm":
                raise ImportError("regressor=lightgbm needs LightGBM: pip install lightgbm "
                                  "(or pip install 'domix[regmix]')") from None
        else:
            model = lightgbm.LGBMRegressor(
                objective="regression", n_estimators=1000, learning_rate=0.01,
                min_child_samples=min(20, max(2, len(y) // 4)), random_state=seed, verbose=-1,
                n_jobs=1)
            model.fit(X, y)
            return "lightgbm", model.predict
    A = np.hstack([X, np.ones((len(X), 1))])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return "linear", lambda Z: np.hstack([Z, np.ones((len(Z), 1))]) @ coef


def best_mixture(predict, candidates: np.ndarray, top_k: int) -> np.ndarray:
    """Average of the ``top_k`` candidates with the lowest predicted loss."""
    pred = predict(candidates)
    top = np.argsort(pred, kind="stable")[:top_k]
    w = candidates[top].mean(0)
    return w / w.sum()


def target_value(ev: dict, target: str) -> float:
    if target in ("macro", "token_average", "worst"):
        return float(ev[target])
    if target not in ev["per_domain"]:
        raise ConfigError(f"mix.regmix.target '{target}': not macro, token_average, worst or one of "
                          f"the evaluation domains {list(ev['per_domain'])}")
    return float(ev["per_domain"][target])


@PIPELINES.register("regmix")
class RegMix(Pipeline):
    Config = RegMixConfig
    name = "regmix"
    reference = "Liu et al. 2025, RegMix (ICLR 2025, arXiv 2407.01492)"
    cost = "`runs` small proxy runs (default 32) + a regression"

    def run(self) -> Artifact:
        c = self.config
        self.begin()
        names = self.data.train.names
        prior = self.data.train.tokens_per_domain.astype(np.float64)
        rng = np.random.default_rng(c.seed)
        X = swarm_sampler(prior, c, rng, c.runs)
        y = []
        for r, p in enumerate(X):
            weights = {n: float(w) for n, w in zip(names, p)}
            summary = self.train_stage(f"proxy-{r:03d}", {"method": "fixed", "params": {"weights": weights}},
                                       c.steps)
            y.append(target_value(require_eval(summary, f"proxy-{r:03d}"), c.target))
        y = np.asarray(y)
        kind, predict = fit_regressor(X, y, c.regressor, c.seed)
        cands = swarm_sampler(prior, c, rng, c.candidates, round_=False)
        w = best_mixture(predict, cands, c.top_k)
        mixture = Mixture(names, w)
        path = self.out / "mixture.json"
        return self.finish("mixture.json", mixture, ["mixing.method=fixed", f"mixing.params.path={path}"],
                           regressor=kind, swarm=X.tolist(), swarm_loss=y.tolist(),
                           predicted_loss=float(predict(w[None, :])[0]))

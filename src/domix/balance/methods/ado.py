"""ADO: Adaptive Data Optimization (Jiang et al., "Adaptive Data Optimization: Dynamic Sample
Selection with Scaling Laws", ICLR 2025, arXiv 2410.11820).

Each domain's own training loss is modelled as a power law in the data seen, refitted during
training; domains are sampled in proportion to how fast their loss is still falling:

    L_k(n)   = e_k + b_k n^(-a_k)                         (fitted per domain, in log space)
    dL_k/dn  = a_k (L_k(n) - e_k) / n                     (forecast learning speed)
    rho_k   ~= a_k (L_k(n) - e_k) / n * prior_k * sqrt(h_k (1 - h_k)),  normalised, >= min_prob
    p_t      = 0.9 pbar_t + 0.1 rho_t,   pbar_t = (1 - 1/(t+1)) pbar_{t-1} + rho_t / (t+1)

Symbols -> variables: e, b, a = exp(params[:, 1]), exp(params[:, 0]), params[:, 2];
prior = ``self.prior`` (token shares by default); h = ``self.history`` (EMA, gamma 0.9, of the
per-step share of each domain in the batch); pbar = ``self.p_avg``; p = ``self.weights``.

Follows the authors' public code (github.com/yidingjiang/ado, ``src/data_selectors/ado.py``), which
fixes what the paper leaves open:
- Fit in log space: log L = logsumexp(log b - a log n, e') with Huber loss (delta 1e-3) on the
  log-loss, soft penalties keeping 0 <= a <= 0.8, e' >= 0.5 and log b <= 6.5, from a grid of
  8 x 8 x 8 starting points (log b in -2..5, e' in -2..1.5, a in 0..0.7), best final objective.
- The training loss is smoothed (Savitzky-Golay, window 101, order 3) and every 10th step is used,
  after ``ignore_steps``. A domain absent from a step's batch repeats its previous loss.
- n is the total data seen (the code's default ``use_same_step_size``: the same x-axis for every
  domain); ``per_domain_n=true`` uses each domain's own count instead. The code counts 1,024-token
  sequences; domix counts tokens / 1024, the same scale.
- Refit every ``refit_every`` steps from ``start_step`` on; a fit with NaN or inf is discarded.
  Before the first fit p = prior. a is floored at 0.05 in the forecast; min probability 0.01.
- The weights change every step (hold_steps = 1); the history EMA uses the realised batch shares.

Where domix chooses:
- Defaults are scaled for short runs: ``ignore_steps`` 50, ``start_step`` 100, ``refit_every``
  100 (the public code: 1000 / 1000 / 1000 on runs of tens of thousands of steps).
- The fit evaluates the code's 512 grid points and refines the best ``fit_starts`` (16) of them
  with Adam (1000 steps, cosine-decayed lr 0.05, gradient written out in numpy), all starts of all
  domains at once: Adam is elementwise, so every start is optimised independently (the code:
  jaxopt LBFGS from all 512 points, vmapped on accelerators). Objective, penalties and grid are the
  code's; a joint torch L-BFGS over the batch converged poorly (one shared line search for 512
  independent problems), and refining all 512 points cost seconds per refit on a CPU.
- At least ``min_fit_points`` (5) subsampled points are needed before a fit; the Savitzky-Golay
  window shrinks to the history length. ``min_prob`` is capped at 1/(2m) so it stays a floor.
- ``result()``: ``p_avg`` at the end (the code's running average of the forecast distribution),
  or the prior before any fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from ...config import Config, ConfigError
from ...types import Mixture
from ..base import METHODS, Domains, MixingMethod, Observation, Proposal

TOKENS_PER_UNIT = 1024.0


@dataclass
class ADOConfig(Config):
    ignore_steps: int = 50  # history before this step is not fitted
    start_step: int = 100  # first fit (and first change of weights)
    refit_every: int = 100
    subsample: int = 10  # fit every 10th (smoothed) step
    smooth_window: int = 101  # Savitzky-Golay window (steps); order 3
    min_fit_points: int = 5
    min_prob: float = 0.01
    history_decay: float = 0.9  # gamma of the batch-share EMA h
    prior: Literal["tokens", "uniform"] = "tokens"
    per_domain_n: bool = False
    fit_iters: int = 1000
    fit_starts: int = 16  # grid points (of 512) refined by the optimiser

    def validate(self) -> None:
        for k in ("start_step", "refit_every", "subsample", "smooth_window", "min_fit_points", "fit_iters", "fit_starts"):
            if getattr(self, k) < 1:
                raise ConfigError(f"mixing.params.{k} must be at least 1")
        if self.ignore_steps < 0 or not 0 <= self.min_prob < 1 or not 0 <= self.history_decay < 1:
            raise ConfigError("mixing.params: ignore_steps >= 0, 0 <= min_prob < 1, 0 <= history_decay < 1")


def savgol(y_KT: np.ndarray, window: int, order: int = 3) -> np.ndarray:
    """Savitzky-Golay smoothing along the last axis; edges by a polynomial fit of the end windows
    (scipy's mode='interp'). The window shrinks (odd) to the series length."""
    T = y_KT.shape[-1]
    w = min(window, T if T % 2 else T - 1)
    if w <= order:
        return y_KT.copy()
    half = w // 2
    x = np.arange(-half, half + 1, dtype=np.float64)
    V = np.vander(x, order + 1, increasing=True)  # [w, order+1]
    fit = np.linalg.pinv(V)  # [order+1, w]: polynomial coefficients from a window
    out = np.empty_like(y_KT, dtype=np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(y_KT, w, axis=-1)  # [K, T-w+1, w]
    out[..., half : T - half] = windows @ fit[0]
    head, tail = y_KT[..., :w] @ fit.T, y_KT[..., -w:] @ fit.T  # [K, order+1]
    out[..., :half] = head @ V[:half].T
    out[..., T - half :] = tail @ V[half + 1 :].T
    return out


def _grid() -> np.ndarray:
    """The code's 8 x 8 x 8 start points (log b, e', a), [512, 3]."""
    a, e, alpha = np.arange(-2.0, 6.0, 1.0), np.arange(-2.0, 2.0, 0.5), np.arange(0.0, 0.8, 0.1)
    return np.stack(np.meshgrid(a, e, alpha, indexing="ij"), -1).reshape(-1, 3)


HUBER_DELTA = 1e-3


def _objective(p_KG3: np.ndarray, logn_KT: np.ndarray, logL_KT: np.ndarray, grad: bool = False):
    """Per start point: sum over points of Huber(log L - logsumexp(a - alpha log n, e)) plus the
    code's penalties; with ``grad``, also d/dparams [K, G, 3] (written out: three parameters)."""
    a, e, alpha = p_KG3[..., 0:1], p_KG3[..., 1:2], p_KG3[..., 2:3]
    logn = logn_KT[:, None, :]
    u = a - alpha * logn
    pred = np.logaddexp(u, e)
    r = logL_KT[:, None, :] - pred
    d = HUBER_DELTA
    huber = np.where(np.abs(r) > d, d * (np.abs(r) - 0.5 * d), 0.5 * r**2).sum(-1)
    penalty = np.maximum(alpha - 0.8, 0) - np.minimum(alpha, 0.001) + np.maximum(a - 6.5, 0) - np.minimum(e - 0.5, 0)
    value = huber + penalty[..., 0]
    if not grad:
        return value
    dpred = -np.clip(r, -d, d)  # dHuber/dpred
    s = np.exp(u - pred)  # dpred/du = sigmoid(u - e)
    g = np.empty_like(p_KG3)
    g[..., 0] = (dpred * s).sum(-1) + (a[..., 0] > 6.5)
    g[..., 1] = (dpred * (1 - s)).sum(-1) - (e[..., 0] < 0.5)
    g[..., 2] = (dpred * s * -logn).sum(-1) + (alpha[..., 0] > 0.8) - (alpha[..., 0] < 0.001)
    return value, g


def fit_power_laws(
    n_KT: np.ndarray, loss_KT: np.ndarray, iters: int = 1000, lr: float = 0.05, starts: int = 16
) -> np.ndarray:
    """(log b, e', a) per domain, best of the grid of starts; L(n) = exp(e') + exp(log b) n^-a.

    The ``starts`` grid points with the lowest objective (of 512) are refined by Adam
    (cosine-decayed step), all of them for every domain at once: Adam is elementwise, so each start
    is optimised independently, in one batched array."""
    logn = np.log(np.maximum(n_KT, 1e-12))
    logL = np.log(np.maximum(loss_KT, 1e-12))
    K = logn.shape[0]
    grid = np.repeat(_grid()[None], K, 0)
    initial = np.nan_to_num(_objective(grid, logn, logL), nan=np.inf)
    best = np.argsort(initial, -1, kind="stable")[:, :starts]
    params = np.take_along_axis(grid, best[..., None], 1)
    m1, m2 = np.zeros_like(params), np.zeros_like(params)
    b1, b2 = 0.9, 0.999
    for i in range(iters):
        _, g = _objective(params, logn, logL, grad=True)
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b2 * m2 + (1 - b2) * g * g
        step_lr = lr * (1e-3 + 0.5 * (1 + math.cos(math.pi * i / iters)))
        params = params - step_lr * (m1 / (1 - b1 ** (i + 1))) / (np.sqrt(m2 / (1 - b2 ** (i + 1))) + 1e-8)
    final = _objective(params, logn, logL)
    final = np.where(np.isfinite(final), final, np.inf)
    return params[np.arange(K), final.argmin(-1)]


def power_law(params_K3: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.exp(params_K3[:, 1]) + np.exp(params_K3[:, 0]) / np.power(n, params_K3[:, 2])


@METHODS.register("ado")
class ADO(MixingMethod):
    Config = ADOConfig
    signals = frozenset()
    reference = "Jiang et al. 2025, Adaptive Data Optimization (ICLR 2025, arXiv 2410.11820)"
    cost: ClassVar[str] = "none in passes; a per-domain power-law fit every refit_every steps (CPU)"

    def start(self, domains: Domains) -> Proposal:
        self.domains = domains
        m = len(domains)
        prior = np.asarray(domains.tokens, dtype=np.float64) if self.config.prior == "tokens" else np.ones(m)
        self.prior = prior / prior.sum() if prior.sum() > 0 else np.full(m, 1.0 / m)
        self.weights, self.p_avg, self.history = self.prior.copy(), self.prior.copy(), self.prior.copy()
        self.counts: list[np.ndarray] = []  # per step, data units seen per domain
        self.losses: list[np.ndarray] = []  # per step, training loss per domain (imputed)
        self.params: np.ndarray | None = None
        self.step = 0
        self.fits = 0
        self._current = Mixture(domains.names, self.weights)
        return Proposal(self._current, 1)

    def update(self, obs: Observation) -> Proposal:
        m = len(self.domains)
        units = np.asarray(obs.tokens, dtype=np.float64) / TOKENS_PER_UNIT
        present = (units > 0) & np.isfinite(obs.train_loss)
        if self.losses:  # an absent domain repeats its previous loss (public code)
            fill = self.losses[-1]
        else:  # before its first observation: the step's mean loss (public code)
            fill = float(np.mean(obs.train_loss[present])) if present.any() else np.nan
        loss = np.where(present, obs.train_loss, fill)
        self.counts.append(units if self.config.per_domain_n else np.full(m, units.sum()))
        self.losses.append(np.asarray(loss, dtype=np.float64))
        if units.sum() > 0:
            g = self.config.history_decay
            self.history = g * self.history + (1 - g) * units / units.sum()
        self.step = obs.step
        info: dict[str, float] = {}
        if self.step >= self.config.start_step and (self.params is None or self.step % self.config.refit_every == 0):
            params = self._fit()
            if params is not None:
                self.params, self.fits = params, self.fits + 1
                info["refit"] = 1.0
        if self.params is not None:
            self._forecast_weights()
        self._current = Mixture(self.domains.names, self.weights)
        return Proposal(self._current, 1, info=info)

    def _fit(self) -> np.ndarray | None:
        cfg = self.config
        loss_KT = np.stack(self.losses, 1)
        n_KT = np.cumsum(np.stack(self.counts, 1), 1)
        if not np.isfinite(loss_KT).all():  # steps before any observation: the domain's (or overall) mean
            if not np.isfinite(loss_KT).any():
                return None
            row = np.nanmean(np.where(np.isfinite(loss_KT), loss_KT, np.nan), 1, keepdims=True)
            row = np.where(np.isfinite(row), row, np.nanmean(loss_KT))
            loss_KT = np.where(np.isfinite(loss_KT), loss_KT, row)
        smooth = savgol(loss_KT, cfg.smooth_window)[:, cfg.ignore_steps :: cfg.subsample]
        n = n_KT[:, cfg.ignore_steps :: cfg.subsample]
        if n.shape[1] < cfg.min_fit_points or not np.isfinite(smooth).all() or (n <= 0).any():
            return None
        params = fit_power_laws(n, np.maximum(smooth, 1e-6), cfg.fit_iters, starts=cfg.fit_starts)
        return params if np.isfinite(params).all() else None

    def _forecast_weights(self) -> None:
        m = len(self.domains)
        n = np.cumsum(np.stack(self.counts, 1), 1)[:, -1]
        n = np.maximum(n, 1e-12)
        irreducible = np.exp(self.params[:, 1])
        exponent = np.maximum(self.params[:, 2], 0.05)
        slope = exponent * (power_law(self.params, n) - irreducible) / n
        rho = slope * self.prior * np.sqrt(self.history * (1 - self.history))
        if not np.isfinite(rho).all() or rho.sum() <= 0:
            rho = self.prior.copy()
        rho = rho / rho.sum()
        rho = np.maximum(rho, min(self.config.min_prob, 0.5 / m))
        rho /= rho.sum()
        self.weights = 0.9 * self.p_avg + 0.1 * rho
        self.weights /= self.weights.sum()
        t = self.step
        self.p_avg = (1 - 1 / (t + 1)) * self.p_avg + rho / (t + 1)

    def result(self) -> Mixture:
        return Mixture(self.domains.names, self.p_avg)

    def diagnostics(self) -> dict[str, Any]:
        if self.params is None:
            return {"fits": self.fits}
        return {"fits": self.fits, "log_b": self.params[:, 0].tolist(), "irreducible": np.exp(self.params[:, 1]).tolist(),
                "exponent": self.params[:, 2].tolist()}

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.copy(), "p_avg": self.p_avg.copy(), "history": self.history.copy(),
                "counts": [c.copy() for c in self.counts], "losses": [x.copy() for x in self.losses],
                "params": None if self.params is None else self.params.copy(), "step": self.step, "fits": self.fits}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = np.asarray(state["weights"], dtype=np.float64).copy()
        self.p_avg = np.asarray(state["p_avg"], dtype=np.float64).copy()
        self.history = np.asarray(state["history"], dtype=np.float64).copy()
        self.counts = [np.asarray(c, dtype=np.float64) for c in state["counts"]]
        self.losses = [np.asarray(x, dtype=np.float64) for x in state["losses"]]
        self.params = None if state["params"] is None else np.asarray(state["params"], dtype=np.float64)
        self.step, self.fits = int(state["step"]), int(state["fits"])
        self._current = Mixture(self.domains.names, self.weights)

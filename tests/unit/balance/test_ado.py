import numpy as np
import pytest

from domix.balance.base import Domains, Observation, build_method
from domix.balance.methods.ado import TOKENS_PER_UNIT, fit_power_laws, power_law, savgol

# planted L_k(n) = e_k + b_k n^-a_k, n in units of 1,024 tokens
E, B, A = np.array([2.5, 3.2, 1.8]), np.array([12.0, 1.0, 10.0]), np.array([0.4, 0.25, 0.6])
TOKENS_PER_STEP = 3 * 4 * TOKENS_PER_UNIT  # 4 sequences of 1,024 tokens per domain per step


def _run(steps, noise=0.0, seed=0, **params):
    rng = np.random.default_rng(seed)
    ado = build_method("ado", {"ignore_steps": 60, "start_step": 200, "refit_every": 100, **params})
    p = ado.start(Domains(("a", "b", "c"), np.array([1.0, 1.0, 2.0])))
    assert np.allclose(p.weights.weights, [0.25, 0.25, 0.5]) and p.hold_steps == 1  # the token prior
    proposals = [p]
    for t in range(1, steps + 1):
        n = t * TOKENS_PER_STEP / TOKENS_PER_UNIT  # total data seen (same x-axis for every domain)
        loss = (E + B * n ** -A) * (1 + noise * rng.normal(size=3))
        proposals.append(ado.update(Observation(t, 1, np.full(3, TOKENS_PER_STEP / 3), loss)))
    return ado, proposals


def test_fit_recovers_planted_power_laws():
    e, b, a = np.array([2.5, 3.2, 1.8]), np.array([6.0, 3.0, 10.0]), np.array([0.4, 0.25, 0.6])
    n_KT = np.tile(np.arange(60, 301, 10) * 12.0, (3, 1))
    params = fit_power_laws(n_KT, e[:, None] + b[:, None] * n_KT ** -a[:, None])
    assert np.allclose(np.exp(params[:, 1]), e, rtol=0.01)  # irreducible loss
    assert np.allclose(params[:, 2], a, atol=0.02)  # exponent
    assert np.allclose(np.exp(params[:, 0]), b, rtol=0.1)  # multiplier


def test_method_fits_its_loss_history_and_samples_by_forecast_learning_speed():
    ado, proposals = _run(201, noise=0.0005)
    assert ado.diagnostics()["fits"] == 1  # at step 200
    n = 201 * TOKENS_PER_STEP / TOKENS_PER_UNIT
    assert np.allclose(power_law(ado.params, np.full(3, n)), E + B * n**-A, rtol=0.01)
    # weights stay at the prior until the first fit, then move toward the forecast learning speed
    assert all(np.allclose(p.weights.weights, [0.25, 0.25, 0.5]) for p in proposals[:200])
    slope = A * B * n**-A / n  # dL/dn of the planted laws
    rho = slope * ado.prior * np.sqrt(ado.history * (1 - ado.history))
    rho /= rho.sum()
    assert np.argmax(proposals[-1].weights.weights - proposals[199].weights.weights) == np.argmax(rho - ado.prior) == 0
    assert proposals[-2].info == {"refit": 1.0} and proposals[-1].info == {}


def test_savgol_is_exact_on_cubics_and_smooths_noise():
    t = np.linspace(-1, 1, 150)
    cubic = (1 + 2 * t - t**2 + 0.5 * t**3)[None]
    assert np.allclose(savgol(cubic, 101), cubic)
    noisy = cubic + np.random.default_rng(0).normal(scale=0.1, size=cubic.shape)
    assert np.abs(savgol(noisy, 31) - cubic).mean() < 0.5 * np.abs(noisy - cubic).mean()
    assert np.allclose(savgol(cubic[:, :3], 101), cubic[:, :3])  # shorter than the order: unchanged


def test_constant_losses_and_absent_domains_keep_a_valid_mixture():
    ado = build_method("ado", {"ignore_steps": 0, "start_step": 20, "refit_every": 10,
                                "fit_iters": 20})
    ado.start(Domains(("a", "b"), np.array([1.0, 3.0])))
    for t in range(1, 41):
        tokens = np.array([0.0, 2048.0]) if t % 3 == 0 else np.array([2048.0, 2048.0])
        loss = np.where(tokens > 0, 4.0, np.nan)
        w = ado.update(Observation(t, 1, tokens, loss)).weights.weights
        assert np.isfinite(w).all() and w.sum() == pytest.approx(1.0) and w.min() > 0
    assert ado.result().weights.sum() == pytest.approx(1.0)

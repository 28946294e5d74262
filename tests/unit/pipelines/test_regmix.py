import types

import numpy as np
import pytest

from domix.pipelines import build_pipeline
from domix.pipelines.regmix import RegMixConfig, best_mixture, fit_regressor, swarm_sampler

PRIOR = np.array([0.4, 0.3, 0.2, 0.1])


def test_swarm_is_distinct_bounded_and_rounded():
    cfg = RegMixConfig(max_usage=2.0, minimum=0.01)
    X = swarm_sampler(PRIOR, cfg, np.random.default_rng(0), 64)
    assert X.shape == (64, 4) and np.allclose(X.sum(1), 1)
    assert len(np.unique(X.round(8), axis=0)) == 64
    assert np.all(X <= PRIOR * 2.0 + 0.01)  # no domain repeated beyond max_usage (up to rounding)
    assert np.all((X == 0) | (X >= 0.01 * 0.95))  # below `minimum` is cut to 0, then rounded


def test_lightgbm_regression_finds_a_planted_best_mixture():
    pytest.importorskip("lightgbm")
    best = np.array([0.1, 0.2, 0.3, 0.4])  # the target loss is lowest here, far from the prior
    cfg = RegMixConfig()
    rng = np.random.default_rng(0)
    X = swarm_sampler(PRIOR, cfg, rng, 128)
    y = 2.0 + ((X - best) ** 2).sum(1)
    kind, predict = fit_regressor(X, y, "lightgbm")
    w = best_mixture(predict, swarm_sampler(PRIOR, cfg, rng, 20_000, round_=False), 128)
    assert kind == "lightgbm"
    # trees are coarse on 128 runs: most of the way from the prior (L1 0.8) to the planted best,
    # and the order of the domains is the planted one, the reverse of the prior's
    assert np.abs(w - best).sum() < 0.35 and w[3] > w[0]


def test_linear_regression_recovers_a_linear_law_and_prefers_its_cheapest_domain():
    rng = np.random.default_rng(1)
    X = rng.dirichlet(np.ones(4), 40)
    c = np.array([3.0, 2.5, 1.0, 2.8])  # loss is linear in the mixture: domain 2 is best
    kind, predict = fit_regressor(X, X @ c, "linear")
    Z = rng.dirichlet(np.ones(4), 5000)
    assert kind == "linear" and np.allclose(predict(Z), Z @ c)
    w = best_mixture(predict, Z, 16)
    assert w.argmax() == 2 and w[2] > 0.6


def test_pipeline_swarm_regression_and_resume_with_planted_losses(tmp_path, micro_config, monkeypatch):
    """The whole pipeline with each proxy run's loss planted: it finds the planted best mixture and
    a rerun reads every stage back instead of training."""
    import domix.pipelines as run_mod  # the name the stages call

    names = None
    calls = []

    def fake_train(cfg, resume=False, callbacks=None, data=None):
        nonlocal names
        names = data.train.names
        p = np.array([cfg.mixing.params["weights"][n] for n in names])
        best = np.linspace(1, 2, len(names)) / np.linspace(1, 2, len(names)).sum()
        calls.append(cfg.out_dir)
        ev = {"macro": float(3 + ((p - best) ** 2).sum()), "per_domain": {}, "token_average": 0, "worst": 0}
        return types.SimpleNamespace(summary={"steps": 2, "tokens": 512, "eval": ev, "extra_compute": {}})

    monkeypatch.setattr(run_mod, "train", fake_train)
    cfg = micro_config(tmp_path / "x", steps=2, eval_every=2)
    params = {"runs": 48, "regressor": "linear", "candidates": 5000, "top_k": 32}
    art = build_pipeline("regmix", cfg, tmp_path / "rm", params).run()
    assert len(calls) == 48 and art.extra["runs"] == 48 and art.extra["train_tokens"] == 48 * 512
    again = build_pipeline("regmix", cfg, tmp_path / "rm", params).run()
    assert len(calls) == 48 and np.array_equal(again.mixture.weights, art.mixture.weights)

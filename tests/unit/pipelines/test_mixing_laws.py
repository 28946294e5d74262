import types

import numpy as np
import pytest

from domix.pipelines import build_pipeline
from domix.pipelines.mixing_laws import fit_laws, minimise, predict


def _planted(m=3, E=2, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.5, E)
    b = rng.uniform(1.0, 2.0, E)
    M = rng.normal(0, 1.0, (m, E))
    return a, b, M - M.mean(0)  # the gauge the fit reports: columns of M have mean 0


def test_fit_recovers_planted_a_b_and_M():
    a, b, M = _planted()
    P = np.random.default_rng(1).dirichlet(np.ones(3), 20)
    fa, fb, fM, r2 = fit_laws(P, predict(P, a, b, M))
    assert np.allclose(fa, a, atol=1e-4) and np.allclose(fb, b, atol=1e-4)
    assert np.allclose(fM, M, atol=1e-4) and np.all(r2 > 0.999999)


def test_minimise_finds_the_best_mixture_on_the_simplex():
    a, b, M = _planted(m=3, E=3, seed=4)
    p = minimise(a, b, M)
    grid = np.array([(i, j, 200 - i - j) for i in range(201) for j in range(201 - i)]) / 200
    brute = predict(grid, a, b, M).mean(1)
    assert predict(p[None], a, b, M).mean() <= brute.min() + 1e-6
    assert np.abs(p - grid[brute.argmin()]).sum() < 0.02


def test_pipeline_sweep_fit_and_minimise_with_planted_losses(tmp_path, micro_config, monkeypatch):
    import domix.pipelines as run_mod  # the name the stages call

    state = {}

    def fake_train(cfg, resume=False, callbacks=None, data=None):
        names = data.train.names
        if "law" not in state:
            state["law"] = _planted(m=len(names), E=2, seed=7)
        p = np.array([cfg.mixing.params["weights"][n] for n in names])
        L = predict(p[None], *state["law"])[0]
        ev = {"per_domain": {"x": float(L[0]), "y": float(L[1])}}
        return types.SimpleNamespace(summary={"steps": 2, "tokens": 512, "eval": ev, "extra_compute": {}})

    monkeypatch.setattr(run_mod, "train", fake_train)
    cfg = micro_config(tmp_path / "x", steps=2, eval_every=2)
    art = build_pipeline("mixing_laws", cfg, tmp_path / "ml").run()
    import json

    out = json.loads(art.path.read_text())
    a, b, M = state["law"]
    m = len(art.mixture)
    assert len(out["sweep"]) == 2 * (m + 2) and art.extra["runs"] == 2 * (m + 2)
    assert np.allclose(out["M"], M, atol=1e-3) and np.allclose(out["a"], a, atol=1e-3)
    best = minimise(a, b, M)
    assert np.abs(art.mixture.weights - best).sum() == pytest.approx(0, abs=1e-3)

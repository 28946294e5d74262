"""DoGraph's analysis: the separation R^2 from the recorded unit Gram equals the direct computation
on the features, and the figures are drawn from a run's mixing.json."""

import numpy as np
import pytest

from domix import io
from domix.balance.base import Domains, Observation, build_method
from domix.evaluate.dograph_plots import plot_domain_graph, plot_feature_pca, separation


def _run_dograph(rng, U=6, refreshes=3):
    dg = build_method("dograph", {"round_steps": 4, "clusters": 3})
    dg.start(Domains(tuple(f"{'ab'[u % 2]}/{u}" for u in range(U)), np.full(U, 100.0)))
    dirs = rng.normal(size=(U, 10))
    feats = []
    for r in range(refreshes):
        units = rng.integers(0, U, 40)
        X = dirs[units] + (0.3 + r) * rng.normal(size=(40, 10))  # the domains blur over training
        feats.append((X / np.linalg.norm(X, axis=1, keepdims=True), units))
        dg.update(Observation(4 * r + 3, 3, np.ones(U), np.ones(U)))
        dg.update(Observation(4 * r + 4, 1, np.ones(U), np.ones(U),
                              {"sample_grad_features": {"features": X, "domains": units}}))
    return dg, feats


def test_separation_from_the_unit_gram_equals_the_direct_r2():
    rng = np.random.default_rng(0)
    dg, feats = _run_dograph(rng)
    groups = ["a", "b"] * 3
    for rec, (X, units) in zip(dg.refreshes, feats):
        g = np.array([groups[u] for u in units])
        total = ((X - X.mean(0)) ** 2).sum(1).mean()
        between = sum((g == k).mean() * ((X[g == k].mean(0) - X.mean(0)) ** 2).sum() for k in "ab")
        assert separation(rec, groups) == pytest.approx(between / total, rel=1e-3)
    seps = [separation(r, groups) for r in dg.refreshes]
    assert seps[0] > seps[-1]  # the synthetic domains merge


def test_figures_are_drawn_from_mixing_json(tmp_path):
    dg, _ = _run_dograph(np.random.default_rng(1))
    path = tmp_path / "mixing.json"
    io.write_json(path, {"domains": list(dg.domains.names), "diagnostics": dg.diagnostics()})
    a = plot_feature_pca(path, ["a", "b"] * 3, tmp_path / "pca.png")
    b = plot_domain_graph(path, tmp_path / "graph.png")
    assert a.stat().st_size > 1000 and b.stat().st_size > 1000
    io.write_json(path, {"diagnostics": {"rnb": 1}})
    with pytest.raises(ValueError, match="no DoGraph refreshes"):
        plot_domain_graph(path, tmp_path / "g2.png")

import json

import numpy as np
import pytest

from domix.balance.base import Domains, Observation, build_method
from domix.config import ConfigError


def _domains(m=3):
    return Domains(tuple(f"d{i}" for i in range(m)), np.ones(m), None)


def _obs(loss, steps=10):
    return Observation(steps, steps, np.ones(len(loss)), np.ones(len(loss)), {"eval_loss": np.asarray(loss)})


def _graph(tmp_path, A, names=("d0", "d1", "d2"), extra=None):
    path = tmp_path / "graph.json"
    path.write_text(json.dumps({"domains": list(names), "graph": A, "extra_compute": extra or {}}))
    return str(path)


def test_the_graph_sends_weight_to_the_domain_that_teaches_the_lagging_one(tmp_path):
    # d0 teaches d2 (A_02 = 1); d2 lags (high loss): d0 gains weight although its own loss is low
    A = [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    sk = build_method("skillit", {"graph": _graph(tmp_path, A, extra={"runs": 3}), "round_steps": 7})
    p0 = sk.start(_domains())
    assert p0.hold_steps == 7 and "eval_loss" in p0.signals and sk.extra["runs"] == 3
    z0 = 0.2 * np.asarray(A) @ np.ones(3)  # the first round: A @ 1 (the public code's init)
    assert np.allclose(p0.weights.weights, np.exp(z0) / np.exp(z0).sum())
    w = sk.update(_obs([1.0, 2.0, 5.0])).weights.weights
    assert w[0] > w[2] > w[1]
    assert np.allclose(w, np.exp(0.2 * np.array([6.0, 2.0, 5.0])) / np.exp(0.2 * np.array([6.0, 2.0, 5.0])).sum())


def test_window_sums_the_last_three_evaluations_and_restarts_from_the_prior():
    sk = build_method("skillit", {"window": 3, "eta": 0.5})  # no graph: A = I
    sk.start(_domains())
    for loss in ([9.0, 0, 0], [1.0, 2, 3], [1.0, 2, 3], [1.0, 2, 3]):
        w = sk.update(_obs(loss)).weights.weights
    # the first evaluation (9 on d0) has left the window
    want = np.exp(0.5 * np.array([3.0, 6, 9]))
    assert np.allclose(w, want / want.sum())
    w2 = sk.update(_obs([np.nan, 2, 3])).weights.weights  # NaN (no validation tokens) counts 0
    assert np.all(np.isfinite(w2))


def test_graph_follows_domain_names_and_refuses_other_domains(tmp_path):
    A = [[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    sk = build_method("skillit", {"graph": _graph(tmp_path, A, names=("d2", "d0", "d1"))})
    sk.start(_domains())
    assert np.allclose(sk.graph, [[1.0, 0, 0], [0, 1.0, 0], [0.5, 0, 1.0]])  # rows/cols reordered
    with pytest.raises(ConfigError, match="same data.domains"):
        build_method("skillit", {"graph": _graph(tmp_path, A, names=("a", "b", "c"))}).start(_domains())

import numpy as np
import pytest

from domix.balance.base import Domains, Observation, build_method
from domix.config import ConfigError


def _domains(target, m=3):
    return Domains(tuple(f"d{i}" for i in range(m)), np.ones(m), np.asarray(target, dtype=float))


def _obs(vectors, counts, steps=10):
    g = np.asarray(vectors, dtype=float)
    sig = {"domain_grad_gram": {"gram": g @ g.T, "counts": np.asarray(counts, dtype=float)}}
    return Observation(step=steps, steps=steps, tokens=np.asarray(counts) * 100.0, train_loss=np.ones(len(g)), signals=sig)


def test_moves_weight_toward_the_domain_aligned_with_the_target():
    rnb = build_method("rnb", {"round_steps": 10})
    p0 = rnb.start(_domains([0.0, 0.0, 1.0]))
    assert np.allclose(p0.weights.weights, 1 / 3) and p0.hold_steps == 10 and "domain_grad_gram" in p0.signals
    # the target is domain 2; domain 1's mean gradient points its way, domain 0's is orthogonal
    p1 = rnb.update(_obs([[1.0, 0.0], [0.2, 0.9], [0.0, 1.0]], counts=[4, 4, 4]))
    w = p1.weights.weights
    assert w[2] > w[1] > w[0]
    # exact update: softmax(3 * G pbar / ||G pbar||), G = gram / (|S_i||S_j|)
    G = np.array([[1.0, 0.2, 0.0], [0.2, 0.85, 0.9], [0.0, 0.9, 1.0]]) / 16
    v = G @ np.array([0, 0, 1.0])
    want = np.exp(3 * v / np.linalg.norm(v))
    assert np.allclose(w, want / want.sum())


def test_counts_normalise_to_mean_gradients():
    rnb = build_method("rnb")
    rnb.start(_domains([0.5, 0.5, 0.0]))
    # same mean gradient direction, domain 0 saw 10x more examples (its sum is 10x larger)
    a = rnb.update(_obs([[10.0, 0.0], [1.0, 0.0], [0.0, 1.0]], counts=[10, 1, 1])).weights.weights
    assert a[0] == pytest.approx(a[1])


def test_absent_domain_keeps_its_weight_and_zero_target_keeps_the_mixture():
    rnb = build_method("rnb")
    rnb.start(_domains([0.0, 1.0, 0.0]))
    p = rnb.update(_obs([[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]], counts=[5, 5, 0]))
    w = p.weights.weights
    assert w[2] == pytest.approx(1 / 3) and w.sum() == pytest.approx(1) and p.info["absent_domains"] == 1
    # a target no present domain covers: G pbar = 0, the mixture is kept and the event logged
    rnb2 = build_method("rnb")
    rnb2.start(_domains([0.0, 0.0, 1.0]))
    p2 = rnb2.update(_obs([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], counts=[3, 3, 0]))
    assert np.allclose(p2.weights.weights, 1 / 3) and p2.info["gpbar_zero"] == 1


def test_result_is_the_step_weighted_average_and_config_is_strict():
    rnb = build_method("rnb", {"round_steps": 5, "temperature": 1.0})
    rnb.start(_domains([1.0, 0.0, 0.0]))
    w1 = rnb.update(_obs([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], counts=[1, 1, 1], steps=5)).weights.weights
    rnb.update(_obs([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], counts=[1, 1, 1], steps=5))
    assert np.allclose(rnb.result().weights, (np.full(3, 1 / 3) + w1) / 2)
    with pytest.raises(ConfigError, match="unknown key 'mixing.params.lamda'"):
        build_method("rnb", {"lamda": 3})

import math

import numpy as np
import pytest

from domix.balance.base import Domains, Observation, build_method
from domix.balance.methods.odm import exploration


def _domains(m):
    return Domains(tuple(f"d{i}" for i in range(m)), np.ones(m))


def _obs(loss, step):
    loss = np.asarray(loss, dtype=float)
    return Observation(step, 1, np.where(np.isfinite(loss), 100.0, 0.0), loss)


@pytest.mark.parametrize("policy", ["smoothed_mean", "exp3"])
def test_exploration_floor_holds_while_one_domain_dominates(policy):
    m = 4
    odm = build_method("odm", {"policy": policy})
    p = odm.start(_domains(m))
    assert np.allclose(p.weights.weights, 0.25) and p.hold_steps == 1
    for t in range(1, 400):
        p = odm.update(_obs([6.0, 2.0, 2.0, 2.0], t))  # domain 0 always has the highest loss
        w = p.weights.weights
        eps = exploration(m, t)
        assert eps == pytest.approx(min(1 / m, math.sqrt(math.log(m) / (m * t))))
        assert w.min() >= eps - 1e-12  # the floor: every domain keeps at least eps_t
        assert p.info["eps"] == pytest.approx(eps)
    # it exploits the high-loss domain, and the floor decays with t
    assert w[0] > 2 * w[1:].max()
    assert exploration(m, 399) < exploration(m, 50) < 1 / m


def test_smoothed_reward_is_exp_loss_with_smoothing():
    odm = build_method("odm", {"smoothing": 0.5})
    odm.start(_domains(2))
    odm.update(_obs([1.0, 2.0], 1))
    odm.update(_obs([3.0, np.nan], 2))  # domain 1 absent: its reward is kept
    want = np.array([0.5 * 0.5 * math.e + 0.5 * math.exp(3.0), 0.5 * math.exp(2.0)])
    assert np.allclose(odm.reward, want)
    eps = exploration(2, 2)
    assert np.allclose(odm.weights, (1 - 2 * eps) * want / want.sum() + eps)


def test_exp3_importance_weights_by_the_sampling_probability():
    odm = build_method("odm", {"policy": "exp3", "reward_scale": 1.0})
    odm.start(_domains(2))
    odm.update(_obs([2.0, 2.0], 1))  # pi = (1/2, 1/2): R = 2 / 0.5 = 4 each
    assert np.allclose(odm.reward, [4.0, 4.0])
    odm.weights = np.array([0.8, 0.2])
    odm.update(_obs([1.0, 1.0], 2))  # same loss, the rarely sampled arm gets 4x the credit
    assert np.allclose(odm.reward, [4.0 + 1 / 0.8, 4.0 + 1 / 0.2])
    assert odm.weights[1] > odm.weights[0]


def test_single_domain_and_result_is_the_average():
    odm = build_method("odm")
    odm.start(_domains(1))
    assert odm.update(_obs([3.0], 1)).weights.weights.tolist() == [1.0]
    odm = build_method("odm")
    odm.start(_domains(2))
    w1 = odm.update(_obs([5.0, 1.0], 1)).weights.weights
    odm.update(_obs([5.0, 1.0], 2))
    assert np.allclose(odm.result().weights, (np.full(2, 0.5) + w1) / 2)

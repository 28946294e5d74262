import numpy as np
import pytest

from domix.balance.base import Domains, Observation, build_method
from domix.balance.methods.aioli import normalise, probe_mixtures
from domix.config import ConfigError

# planted: training on mixture p lowers domain i's validation loss by (A p)_i per probe
A_TRUE = np.array([[0.30, 0.05, -0.02], [0.02, 0.10, 0.00], [0.10, 0.00, 0.50]])


def _drive(aioli, rounds, rng=None):
    """Feed the method evaluation losses from the planted linear model; returns the proposals."""
    m = A_TRUE.shape[0]
    p = aioli.start(Domains(tuple("abc"), np.ones(m)))
    loss, step, proposals = np.full(m, 5.0), 0, [p]
    while aioli.rounds < rounds:
        probing = p.info.get("probe", -1) >= 0  # the stretch on p: any drop, it is not used
        loss = loss - (A_TRUE @ p.weights.weights if probing else 0.01)
        step += p.hold_steps
        noise = 0 if rng is None else rng.normal(scale=1e-3, size=m)
        p = aioli.update(Observation(step, p.hold_steps, np.ones(m), np.ones(m), {"eval_loss": loss + noise}))
        proposals.append(p)
    return proposals


def test_recovers_a_planted_a_and_takes_the_exponentiated_step():
    aioli = build_method("aioli", {"round_steps": 100, "sweeps": 2, "probe_steps": 3, "eta": 0.5})
    proposals = _drive(aioli, rounds=2)
    first = proposals[0]
    assert first.hold_steps == 100 - 2 * 3 * 3 and "eval_loss" in first.signals  # the stretch on p_0
    probes = [p for p in proposals if p.info.get("probe", -1) >= 0]
    assert len(probes) == 2 * 2 * 3 and all(p.hold_steps == 3 for p in probes)
    # each round probes every domain `sweeps` times, on the smoothed one-hot mixtures
    assert sorted(int(p.info["probe"]) for p in probes[:6]) == [0, 0, 1, 1, 2, 2]
    Q = probe_mixtures(3, 0.625)
    assert all(np.allclose(p.weights.weights, Q[int(p.info["probe"])]) for p in probes)
    rounds = aioli.diagnostics()["rounds"]
    assert np.allclose(rounds[0]["A_raw"], A_TRUE) and np.allclose(rounds[1]["A_raw"], A_TRUE)
    A = normalise(A_TRUE)
    assert A.min() == 0 and A.sum() == pytest.approx(1)
    want = np.exp(2 * 0.5 * A.sum(0))  # two rounds of log p += eta * sum_i A_ij from uniform
    assert np.allclose(proposals[-1].weights.weights, want / want.sum())
    assert np.argmax(proposals[-1].weights.weights) == 2  # the column with the largest total effect
    assert aioli.result() == proposals[-1].weights  # the latest learned mixture


def test_noisy_evaluations_still_rank_the_columns():
    aioli = build_method("aioli", {"round_steps": 200, "sweeps": 4, "probe_steps": 4})
    _drive(aioli, rounds=1, rng=np.random.default_rng(0))
    A_raw = np.array(aioli.diagnostics()["rounds"][0]["A_raw"])
    assert np.argsort(A_raw.sum(0)).tolist() == np.argsort(A_TRUE.sum(0)).tolist()


def test_ema_and_errors():
    aioli = build_method("aioli", {"round_steps": 100, "sweeps": 1, "probe_steps": 2, "ema": 0.5})
    proposals = _drive(aioli, rounds=2)
    want = np.exp(0.2 * normalise(A_TRUE).sum(0))  # EMA of equal A's is A; not accumulated
    assert np.allclose(proposals[-1].weights.weights, want / want.sum())
    with pytest.raises(ConfigError, match="leaves no steps"):
        build_method("aioli", {"round_steps": 10}).start(Domains(tuple("abc"), np.ones(3)))
    one = build_method("aioli")
    p = one.start(Domains(("a",), np.ones(1)))
    assert p.hold_steps is None and p.weights.weights.tolist() == [1.0]

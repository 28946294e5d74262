"""The contract every registered mixing method keeps, driven with synthetic signals.

A method that asks for a signal needs a fake here (``FAKES``): add one with the signal.
"""

import copy

import numpy as np
import pytest

from domix.balance.base import METHODS, Domains, Observation, build_method

FAKE_PARAMS = {
    "fixed": {"weights": {"d0": 2.0, "d1": 1.0}},
    "aioli": {"round_steps": 1000},  # the probes of 50 domains take 4 * 4 * 50 = 800 steps
}


def _fake_gram(m, rng, counts):
    """A round of 4 steps: per-domain mean gradients plus per-example noise, summed per step."""
    mean = rng.normal(size=(m, 16))
    c_SM = np.stack([rng.multinomial(int(c), [0.25] * 4) for c in counts], 1).astype(float)
    blocks = c_SM[:, :, None] * mean + rng.normal(size=(4, m, 16)) * np.sqrt(c_SM)[:, :, None]
    g = blocks.sum(0)
    return {"gram": g @ g.T, "counts": c_SM.sum(0), "sq": (blocks**2).sum((0, 2)), "n2": (c_SM**2).sum(0)}


def _fake_alignment(m, rng, counts, constant):
    present = counts > 0
    align = np.zeros(m) if constant else np.where(present, rng.normal(size=m), 0.0)
    norm = np.where(present, 1.0 if constant else 1 + rng.random(m), 0.0)
    return {"align": align[None], "norm": norm[None], "present": present[None], "lr": np.array([1e-3]),
            "val_loss": np.array([3.0])}


def _fake_sample_features(m, rng, counts):
    """Per-sample gradient sketches: a direction per domain plus noise, for the domains present."""
    present = np.flatnonzero(counts > 0)
    dom = rng.choice(present, size=min(64, int(counts.sum()))) if len(present) else np.zeros(0, int)
    centers = np.random.default_rng(7).normal(size=(m, 16))
    feats = centers[dom] + 0.5 * rng.normal(size=(len(dom), 16))
    return {"features": feats.astype(np.float32), "domains": dom}


FAKES = {
    "domain_grad_gram": lambda m, rng, counts, constant: _fake_gram(m, rng, counts),
    "grad_alignment": _fake_alignment,
    "eval_loss": lambda m, rng, counts, constant: np.full(m, 3.0) if constant else 3 + rng.random(m),
    "excess_loss": lambda m, rng, counts, constant: {
        "excess": counts * 128 * (0.5 if constant else rng.random(m)),
        "tokens": counts * 128.0,
    },
    "sample_grad_features": lambda m, rng, counts, constant: (
        {"features": np.ones((8, 16), np.float32), "domains": np.flatnonzero(counts > 0)[:1].repeat(8)}
        if constant else _fake_sample_features(m, rng, counts)),
}


def _domains(m):
    return Domains(tuple(f"d{i}" for i in range(m)), np.arange(1, m + 1) * 1000.0, np.full(m, 1.0 / m))


def _observation(method, proposal, step, rng, m, zero_domain=None, constant=False):
    steps = proposal.hold_steps or 10
    counts = rng.integers(1, 20, m).astype(float)
    if zero_domain is not None:
        counts[zero_domain] = 0
    loss = np.full(m, 4.0) if constant else 4 + rng.random(m)
    loss = np.where(counts > 0, loss, np.nan)
    signals = {name: FAKES[name](m, rng, counts, constant) for name in proposal.signals}
    return Observation(step + steps, steps, counts * 128, loss, signals)


def _run(name, m=4, rounds=6, seed=0, zero_domain=None, constant=False, stop_at=None):
    rng = np.random.default_rng(seed)
    method = build_method(name, FAKE_PARAMS.get(name))
    domains = _domains(m)
    proposals = [method.start(domains)]
    step = 0
    for r in range(rounds):
        if stop_at == r:  # resume: a fresh object from the saved state
            state = copy.deepcopy(method.state_dict())
            method = build_method(name, FAKE_PARAMS.get(name))
            method.start(domains)
            method.load_state_dict(state)
        obs = _observation(method, proposals[-1], step, rng, m, zero_domain if r % 2 else None, constant)
        step = obs.step
        proposals.append(method.update(obs))
    return method, proposals


def _check_simplex(w, m):
    assert w.shape == (m,) and np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name", METHODS.names())
def test_weights_stay_on_the_simplex_and_never_nan(name):
    method, proposals = _run(name)
    for p in proposals:
        _check_simplex(p.weights.weights, 4)
        assert p.hold_steps is None or p.hold_steps >= 1
        if p.loss_weights is not None:
            _check_simplex(np.asarray(p.loss_weights), 4)
    _check_simplex(method.result().weights, 4)


@pytest.mark.parametrize("name", METHODS.names())
def test_same_seed_same_trajectory(name):
    a = [p.weights.weights for p in _run(name, seed=3)[1]]
    b = [p.weights.weights for p in _run(name, seed=3)[1]]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("name", METHODS.names())
def test_resume_mid_run_gives_the_same_trajectory(name):
    a = [p.weights.weights for p in _run(name, seed=5)[1]]
    b = [p.weights.weights for p in _run(name, seed=5, stop_at=3)[1]]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("name", METHODS.names())
def test_domains_without_tokens_and_constant_losses(name):
    for kwargs in ({"zero_domain": 1}, {"constant": True}, {"zero_domain": 0, "constant": True}):
        method, proposals = _run(name, **kwargs)
        for p in proposals:
            _check_simplex(p.weights.weights, 4)


@pytest.mark.parametrize("name", METHODS.names())
def test_one_domain_and_many_domains(name):
    if name == "fixed":
        pytest.skip("fixed names its domains")
    for m in (1, 50):
        method, proposals = _run(name, m=m, rounds=3)
        for p in proposals:
            _check_simplex(p.weights.weights, m)


def test_every_method_declares_its_signals_and_reference():
    for name, cls in METHODS.items():
        assert cls.reference, name
        assert set(cls.signals) <= set(FAKES), f"{name} needs a fake for {set(cls.signals) - set(FAKES)}"

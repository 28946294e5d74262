"""DoGraph as a mixing method, driven with synthetic per-sample features."""

import numpy as np
import pytest

from domix.balance.base import Domains, Observation, build_method
from domix.config import ConfigError

SIG = "sample_grad_features"


def _domains(U=6, tokens=None, target=None):
    tokens = np.full(U, 1000.0) if tokens is None else np.asarray(tokens, dtype=float)
    return Domains(tuple(f"u{i}" for i in range(U)), tokens, None if target is None else np.asarray(target, float))


def _features(unit_dirs, units, rng, noise=0.05):
    """Samples of the given base units around their unit's direction."""
    X = unit_dirs[units] + noise * rng.normal(size=(len(units), unit_dirs.shape[1]))
    return {"features": X.astype(np.float32), "domains": np.asarray(units)}


def _two_group_dirs(U=6, D=12, seed=0):
    """Units 0-2 share one gradient direction, units 3-5 another (orthogonal)."""
    e = np.eye(D)
    rng = np.random.default_rng(seed)
    return np.stack([e[0] if u < U // 2 else e[1] for u in range(U)]) + 0.01 * rng.normal(size=(U, D))


def _obs(step, steps, sig=None, U=6):
    return Observation(step, steps, np.ones(U), np.ones(U), {} if sig is None else {SIG: sig})


def _refresh(method, step, sig):
    """Drive one round: the plain part ends (probe proposal), then the probe ends (refresh)."""
    U = len(method.domains)
    p = method.update(_obs(step - 1, 1, U=U))
    assert SIG in p.signals and p.hold_steps == method.config.probe
    return method.update(_obs(step, 1, sig, U=U))


def test_schedule_warms_up_at_the_prior_then_probes_before_each_refresh():
    dg = build_method("dograph", {"round_steps": 10, "warmup_steps": 20, "probe_steps": 2, "clusters": 2,
                                    "prior": "tokens"})
    p0 = dg.start(_domains(tokens=[1, 1, 2, 2, 4, 4]))
    assert p0.hold_steps == 18 and not p0.signals
    assert np.allclose(p0.weights.weights, np.array([1, 1, 2, 2, 4, 4]) / 14)  # the token prior
    rng = np.random.default_rng(0)
    p2 = _refresh(dg, 20, _features(_two_group_dirs(), rng.integers(0, 6, 60), rng))
    assert p2.hold_steps == 8 and not p2.signals and p2.info["refresh"] == 1
    assert p2.info["clusters_active"] == 2 and p2.info["units_seen"] == 6
    with pytest.raises(ConfigError, match="probe_steps <= round_steps"):
        build_method("dograph", {"round_steps": 2, "probe_steps": 3})
    # the default probe: 16 steps (256 samples at batch 16), or the whole round when it is shorter
    assert build_method("dograph", {"round_steps": 50}).config.probe == 16
    assert build_method("dograph", {"round_steps": 10}).start(_domains()).signals == {SIG}


def test_moves_weight_to_the_cluster_aligned_with_the_target_within_the_caps():
    # the target (validation share) sits entirely on units 3-5; all units have the same tokens
    cfg = {"round_steps": 4, "clusters": 2, "max_upsample": 1.6, "min_weight": 0.1, "beta": 0.2,
           "prior": "tokens", "target": "documents", "utility": "direction", "objective": "linear"}
    dg = build_method("dograph", cfg)
    dg.start(_domains(target=[0, 0, 0, 1, 1, 1]))
    rng = np.random.default_rng(1)
    dirs = _two_group_dirs()
    for r in range(1, 4):
        p = _refresh(dg, 4 * r, _features(dirs, rng.integers(0, 6, 60), rng))
        w = p.weights.weights
        group_b = w[3:].sum()
        assert w.sum() == pytest.approx(1) and np.all(w >= 0)
        assert group_b <= 1.6 * 0.5 + 1e-9 and 1 - group_b >= 0.1 - 1e-9  # cap and minimum weight
        assert np.allclose(w[:3], w[0]) and np.allclose(w[3:], w[3])  # token-proportional in a cluster
    assert group_b == pytest.approx(0.8)  # the repetition cap binds: no more than 1.6x natural
    assert p.info["at_cap"] == 1


def test_cluster_identity_is_stable_across_a_refresh_on_unchanged_data():
    dg = build_method("dograph", {"round_steps": 4, "clusters": 3, "beta": 1e3})
    dg.start(_domains(U=9))
    rng = np.random.default_rng(2)
    dirs = np.repeat(np.eye(12)[:3], 3, axis=0) + 0.01 * rng.normal(size=(9, 12))
    sig = _features(dirs, np.repeat(np.arange(9), 8), rng)
    p1 = _refresh(dg, 4, sig)
    assign1, C1 = dg.assign.copy(), dg.centroids.copy()
    assert [len(set(assign1[3 * g:3 * g + 3])) for g in range(3)] == [1, 1, 1] and len(set(assign1)) == 3
    p2 = _refresh(dg, 8, sig)
    assert np.array_equal(dg.assign, assign1) and np.allclose(dg.centroids, C1)
    assert p2.info["relabelled"] == 0 and p2.info["units_reassigned"] == 0
    # the same data in another order, with the stored centroids' ids shuffled: the partition is
    # unchanged and the ids follow the stored centroids
    order = rng.permutation(len(sig["domains"]))
    dg.centroids = dg.centroids[[2, 0, 1]]
    _refresh(dg, 12, {k: v[order] for k, v in sig.items()})
    assert np.array_equal(dg.assign, np.argsort([2, 0, 1])[assign1])
    assert p1.info["cluster_weight/c00"] > 0


def test_unprobed_units_get_a_cluster_and_keep_being_sampled():
    dg = build_method("dograph", {"round_steps": 4, "clusters": 2})
    dg.start(_domains())
    rng = np.random.default_rng(3)
    p = _refresh(dg, 4, _features(_two_group_dirs(), rng.choice([0, 1, 3, 4], 40), rng))  # 2, 5 unseen
    assert np.all(dg.assign >= 0) and np.all(p.weights.weights > 0)
    assert dg.assign[2] == dg.assign[5] and p.info["units_seen"] == 4


def test_empty_probe_keeps_the_mixture_and_resume_is_exact():
    import copy

    dg = build_method("dograph", {"round_steps": 4, "clusters": 2})
    dg.start(_domains())
    w0 = dg.result().weights.copy()
    p = _refresh(dg, 4, {"features": np.zeros((0, 8), np.float32), "domains": np.zeros(0, int)})
    assert p.info["probe_empty"] == 1 and np.allclose(p.weights.weights, w0)
    rng = np.random.default_rng(4)
    sigs = [_features(_two_group_dirs(), rng.integers(0, 6, 30), rng) for _ in range(3)]
    _refresh(dg, 8, sigs[0])
    clone = build_method("dograph", {"round_steps": 4, "clusters": 2})
    clone.start(_domains())
    clone.load_state_dict(copy.deepcopy(dg.state_dict()))
    for i, s in enumerate(sigs[1:]):
        a, b = _refresh(dg, 12 + 4 * i, s), _refresh(clone, 12 + 4 * i, s)
        assert np.array_equal(a.weights.weights, b.weights.weights)
    assert dg.diagnostics()["refreshes"] == clone.diagnostics()["refreshes"]


def test_every_refresh_writes_a_record():
    dg = build_method("dograph", {"round_steps": 4, "clusters": 2, "beta": 0.5, "objective": "linear"})
    dg.start(_domains())
    rng = np.random.default_rng(5)
    dirs = _two_group_dirs()
    loss = np.array([1.0, 1.0, 1.0, 3.0, 3.0, 3.0])
    p_prev = dg._current.weights
    for step in (4, 8):
        dg.update(_obs(step - 1, 1))
        p = dg.update(Observation(step, 1, np.ones(6), loss, {SIG: _features(dirs, rng.integers(0, 6, 60), rng)}))
        rec, info = dg.diagnostics()["refreshes"][-1], p.info
        assert info["round"] == step // 4 and rec["l1_change"] == pytest.approx(np.abs(p.weights.weights - p_prev).sum())
        assert info["l1_change"] == pytest.approx(rec["l1_change"]) and np.allclose(rec["weights"], p.weights.weights)
        c_hi = dg.assign[3]  # the cluster of the high-loss units
        assert info[f"cluster_train_loss/c{c_hi:02d}"] == pytest.approx(3.0)
        assert info[f"cluster_train_loss/c{1 - c_hi:02d}"] == pytest.approx(1.0)
        # the trust-region-only target: w_prev exp(u / beta), normalised; the constrained weights
        u, free = np.asarray(rec["utility"]), np.asarray(rec["unconstrained"])
        assert free.sum() == pytest.approx(1) and np.argmax(free) == np.argmax(u)
        assert [info[f"cluster_utility/c{j:02d}"] for j in rec["clusters"]] == pytest.approx(u.tolist())
        assert info["graph_weight_min"] <= info["graph_weight_mean"] <= info["graph_weight_max"]
        assert all(isinstance(v, float) for v in info.values())
        p_prev = p.weights.weights


def _three_units(rng, pbar_val=None, n=40):
    """Three units along orthogonal gradient directions (with per-sample noise); the validation
    sketches are a pbar_val mix of the same directions (sketched per unit)."""
    dirs = np.eye(8)[:3]
    units = np.repeat(np.arange(3), n)
    sig = _features(dirs, units, rng, noise=0.3)
    val_units = np.repeat(np.arange(3), 10)
    sig["val_features"] = (dirs[val_units] + 0.3 * rng.normal(size=(30, 8))).astype(np.float32)
    sig["val_domains"] = val_units
    return sig


def test_target_from_validation_sketches_moves_weight_to_the_unit_the_validation_set_needs():
    # training target shares say unit 0; the validation sketches of unit 2 point along unit 2's
    # gradient; with target_features: validation and the target on unit 2 only, unit 2 gains
    cfg = {"round_steps": 4, "clusters": 3, "utility": "gradient", "max_upsample": 3.0, "min_weight": 0.0,
           "beta": 0.5, "gamma": 0.0, "target": "documents", "objective": "linear"}
    weights = {}
    for source in ("validation", "training"):
        dg = build_method("dograph", {**cfg, "target_features": source})
        dg.start(_domains(U=3, target=[0, 0, 1]))
        rng = np.random.default_rng(3)
        sig = _three_units(rng)
        if source == "training":  # the training mix target must not read the validation sketches
            sig["val_features"] = -sig["val_features"]
        p = _refresh(dg, 4, sig)
        assert p.info["target_from_validation"] == (source == "validation")
        weights[source] = p.weights.weights
        assert weights[source][2] > 0.5  # both point at unit 2 here (the target share is unit 2's)
    # without validation sketches the validation source falls back to the training mix, and says so
    dg = build_method("dograph", {**cfg, "target_features": "validation"})
    dg.start(_domains(U=3, target=[0, 0, 1]))
    sig = _three_units(np.random.default_rng(3))
    sig["val_features"], sig["val_domains"] = np.zeros((0, 8), np.float32), np.zeros(0, np.int64)
    assert _refresh(dg, 4, sig).info["target_from_validation"] == 0


def test_validation_target_is_the_pbar_weighted_mean_of_per_domain_validation_sketches():
    dg = build_method("dograph", {"round_steps": 4, "clusters": 3, "utility": "gradient",
                                  "target_features": "validation", "target": "documents"})
    dg.start(_domains(U=3, target=[0.5, 0.25, 0.25]))
    rng = np.random.default_rng(4)
    sig = _three_units(rng)
    # unit 0 sketched 3x as often as the others: a plain mean would over-weigh it
    sig["val_features"] = np.concatenate([np.tile(np.eye(8)[0], (30, 1)), np.tile(np.eye(8)[1], (10, 1)),
                                          np.tile(np.eye(8)[2], (10, 1))]).astype(np.float32)
    sig["val_domains"] = np.repeat([0, 1, 2], [30, 10, 10])
    _refresh(dg, 4, sig)
    nu = np.eye(8)[:3]
    got, from_val = dg._target_mean(sig, nu, np.arange(3), np.full(3, 1000.0))
    assert from_val and np.allclose(got, [0.5, 0.25, 0.25, 0, 0, 0, 0, 0])


def test_mmd_objective_settles_on_the_mixture_that_matches_the_target_the_linear_one_runs_away():
    # validation = 0.5 / 0.3 / 0.2 of three orthogonal unit gradients: the training mixture whose
    # mean gradient matches it is those weights; the linear utility keeps pushing toward unit 0
    cfg = {"round_steps": 4, "clusters": 3, "utility": "gradient", "target_features": "validation",
           "target": "documents", "max_upsample": 3.0, "min_weight": 0.0, "beta": 0.05, "gamma": 0.0, "eg_steps": 2000}
    final = {}
    for objective in ("mmd", "linear"):
        dg = build_method("dograph", {**cfg, "objective": objective})
        dg.start(_domains(U=3, target=[0.5, 0.3, 0.2]))
        rng = np.random.default_rng(5)
        for r in range(1, 5):
            final[objective] = _refresh(dg, 4 * r, _three_units(rng)).weights.weights
    assert np.allclose(final["mmd"], [0.5, 0.3, 0.2], atol=0.06)
    assert final["linear"][0] > 0.8
    with pytest.raises(ConfigError, match="utility: gradient"):
        build_method("dograph", {"objective": "mmd", "utility": "direction"})

import numpy as np
import pytest

from domix.balance.base import Domains, Observation, build_method
from domix.config import ConfigError

PAPER = {"target": "documents", "step": 1.0, "min_weight": 0.0}  # the paper's rule exactly


def _domains(target, m=3, macro=None):
    target = np.asarray(target, dtype=float)
    return Domains(tuple(f"d{i}" for i in range(m)), np.ones(m), target, target if macro is None else np.asarray(macro))


def _signal(blocks, counts):
    """The domain_grad_gram signal of a round from per-step gradient sums blocks [steps, m, d] and
    per-step example counts [steps, m]."""
    blocks, counts = np.asarray(blocks, dtype=float), np.asarray(counts, dtype=float)
    g = blocks.sum(0)
    return {"gram": g @ g.T, "counts": counts.sum(0), "sq": (blocks**2).sum((0, 2)), "n2": (counts**2).sum(0)}


def _obs(vectors, counts, steps=10):
    """A round seen as one step (the unbiased diagonal falls back to the plug-in)."""
    sig = {"domain_grad_gram": _signal([vectors], [counts])}
    return Observation(step=steps, steps=steps, tokens=np.asarray(counts) * 100.0, train_loss=np.ones(len(vectors)), signals=sig)


def test_moves_weight_toward_the_domain_aligned_with_the_target():
    rnb = build_method("rnb", {"round_steps": 10, **PAPER})
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


def test_unbiased_diagonal_keeps_only_cross_step_terms_and_removes_the_noise_bias():
    rng = np.random.default_rng(0)
    mu = np.array([[1.0, 0.0], [0.0, 0.3], [0.5, 0.5]])
    n_s = np.array([[1, 6, 2], [2, 5, 1], [1, 7, 2], [3, 6, 1]])  # domain 0: few examples a step
    plug, unb = build_method("rnb", {"gram": "plugin"}), build_method("rnb", {"gram": "unbiased"})
    for m in (plug, unb):
        m.start(_domains([1 / 3] * 3))
    draws = {"plugin": [], "unbiased": []}
    for _ in range(3000):
        # a step's block is the sum of its examples' gradients: mean mu, per-example noise sd 2
        blocks = n_s[:, :, None] * mu[None] + rng.normal(0, 2.0, (4, 3, 2)) * np.sqrt(n_s)[:, :, None]
        sig = _signal(blocks, n_s)
        present = np.ones(3, bool)
        draws["plugin"].append(np.diag(plug._gram(sig, present, 'plugin')))
        draws["unbiased"].append(np.diag(unb._gram(sig, present, 'unbiased')))
    # exact on one draw: sum over distinct steps s != t of <g_s, g_t> / sum of n_s n_t
    cross = sum(blocks[s, 0] @ blocks[t, 0] for s in range(4) for t in range(4) if s != t)
    den = sum(n_s[s, 0] * n_t for s in range(4) for t, n_t in enumerate(n_s[:, 0]) if s != t)
    assert np.diag(unb._gram(sig, present, 'unbiased'))[0] == pytest.approx(cross / den)
    truth = (mu**2).sum(1)
    assert np.allclose(np.mean(draws["unbiased"], 0), truth, atol=0.05)
    # the plug-in is inflated by tr(Cov) / n = 8 / n, most for the domain with the fewest examples
    bias = np.mean(draws["plugin"], 0) - truth
    assert bias[0] == pytest.approx(8 / 7, rel=0.1) and bias[0] > 3 * bias[1]


def test_target_selects_macro_or_documents_pbar():
    docs, macro = [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]
    for target, want in (("documents", 2), ("macro", 0)):
        rnb = build_method("rnb", {"target": target})
        rnb.start(_domains(docs, macro=macro))
        w = rnb.update(_obs([[1.0, 0.0], [0.0, 0.5], [0.0, 1.0]], counts=[4, 4, 4])).weights.weights
        assert int(np.argmax(w)) == want
    with pytest.raises(ConfigError, match="'tokens' is not one of"):
        build_method("rnb", {"target": "tokens"})


def test_paper_settings_reproduce_the_plugin_formula_exactly_and_the_default_damps_it():
    rng = np.random.default_rng(1)
    n_s = np.array([[1, 6, 2], [2, 5, 1], [1, 7, 2]])
    blocks = rng.normal(size=(3, 3, 4)) * n_s[:, :, None]
    docs, macro = np.array([0.5, 0.2, 0.3]), np.full(3, 1 / 3)
    got = {}
    for name, params in (("default", {}), ("paper", PAPER)):
        rnb = build_method("rnb", params)
        rnb.start(_domains(docs, macro=macro))
        obs = Observation(step=10, steps=10, tokens=np.ones(3), train_loss=np.ones(3),
                          signals={"domain_grad_gram": _signal(blocks, n_s)})
        got[name] = rnb.update(obs).weights.weights
    g, n = blocks.sum(0), n_s.sum(0)
    G = g @ g.T / np.outer(n, n)

    def softmax(v):
        e = np.exp(3 * v / np.linalg.norm(v))
        return e / e.sum()

    assert np.allclose(got["paper"], softmax(G @ docs), rtol=1e-12)
    # default: macro pbar, q floored at 0.05, a quarter of the way from uniform
    assert np.allclose(got["default"], 0.75 / 3 + 0.25 * (0.05 + 0.85 * softmax(G @ macro)), rtol=1e-12)


def test_each_round_writes_a_metrics_record():
    rnb = build_method("rnb", {"round_steps": 5, **PAPER})
    rnb.start(_domains([0.2, 0.3, 0.5]))
    vectors = [[1.0, 0.0], [0.2, 0.9], [0.0, 1.0]]
    rec1 = rnb.update(_obs(vectors, counts=[4, 4, 4], steps=5)).info
    p2 = rnb.update(_obs([[0.0, 1.0], [0.2, 0.9], [1.0, 0.0]], counts=[4, 4, 4], steps=10))
    rec2, rounds = p2.info, rnb.diagnostics()["rounds"]
    assert rec1["round"] == 1 and rec2["round"] == 2 and [r["round"] for r in rounds] == [1, 2]
    G = np.asarray(rounds[0]["gram"])
    assert np.allclose(np.diag(G), np.square(vectors).sum(1) / 16)
    for j, name in enumerate(("d0", "d1", "d2")):
        assert rec1[f"gram_diag/{name}"] == pytest.approx(G[j, j])
        assert rec1[f"gpbar/{name}"] == pytest.approx(rounds[0]["gpbar"][j])
    off = G[~np.eye(3, dtype=bool)]
    assert rec1["gram_offdiag_min"] == pytest.approx(off.min()) and rec1["gram_offdiag_max"] == pytest.approx(off.max())
    assert rec1["gram_offdiag_mean"] == pytest.approx(off.mean()) and -1 <= rec1["gram_cos_mean"] <= 1
    w0, w1, w2 = np.full(3, 1 / 3), np.asarray(rounds[0]["weights"]), p2.weights.weights
    assert rec1["l1_change"] == pytest.approx(np.abs(w1 - w0).sum()) and rec1["l1_change"] > 0.1
    assert rec2["l1_change"] == pytest.approx(np.abs(w2 - w1).sum()) == rounds[1]["l1_change"]
    assert all(isinstance(v, float) for v in rec2.values())  # every entry is a metric


def test_rounds_are_logged_and_restored():
    rnb = build_method("rnb", {"round_steps": 5})
    rnb.start(_domains([0.2, 0.3, 0.5]))
    p = rnb.update(_obs([[1.0, 0.0], [0.2, 0.9], [0.0, 1.0]], counts=[4, 4, 4], steps=5))
    r = rnb.diagnostics()["rounds"][0]
    assert r["step"] == 5 and r["counts"] == [4, 4, 4] and np.allclose(r["weights"], p.weights.weights)
    assert np.allclose(np.asarray(r["gram"]) @ np.array([0.2, 0.3, 0.5]), r["gpbar"])
    clone = build_method("rnb", {"round_steps": 5})
    clone.start(_domains([0.2, 0.3, 0.5]))
    clone.load_state_dict(rnb.state_dict())
    assert clone.diagnostics() == rnb.diagnostics()


def test_step_damps_and_min_weight_floors_the_new_mixture():
    vectors, counts = [[1.0, 0.0], [0.2, 0.9], [0.0, 1.0]], [4, 4, 4]
    paper = build_method("rnb", PAPER)
    paper.start(_domains([0.0, 0.0, 1.0]))
    q = paper.update(_obs(vectors, counts)).weights.weights
    damped = build_method("rnb", {**PAPER, "step": 0.25})
    damped.start(_domains([0.0, 0.0, 1.0]))
    assert np.allclose(damped.update(_obs(vectors, counts)).weights.weights, 0.75 / 3 + 0.25 * q)
    floored = build_method("rnb", {**PAPER, "min_weight": 0.1})
    floored.start(_domains([0.0, 0.0, 1.0]))
    w = floored.update(_obs(vectors, counts)).weights.weights
    assert np.allclose(w, 0.1 + 0.7 * q) and w.min() >= 0.1 and w.sum() == pytest.approx(1.0)
    for bad in ({"step": 0.0}, {"step": 1.5}, {"min_weight": 1.0}):
        with pytest.raises(ConfigError):
            build_method("rnb", bad)


def test_gram_ema_averages_rounds_and_resumes():
    a, b = [[1.0, 0.0], [0.2, 0.9], [0.0, 1.0]], [[0.0, 1.0], [0.9, 0.2], [1.0, 0.0]]
    ema = build_method("rnb", {"gram_ema": 0.5})
    ema.start(_domains([0.2, 0.3, 0.5]))
    ema.update(_obs(a, counts=[4, 4, 4]))
    clone = build_method("rnb", {"gram_ema": 0.5})
    clone.start(_domains([0.2, 0.3, 0.5]))
    clone.load_state_dict(ema.state_dict())
    got = [m.update(_obs(b, counts=[4, 4, 4])) for m in (ema, clone)]
    assert np.array_equal(got[0].weights.weights, got[1].weights.weights)
    ga, gb = (np.asarray(x) @ np.asarray(x).T / 16 for x in (a, b))
    assert np.allclose(ema.diagnostics()["rounds"][1]["gram"], 0.5 * ga + 0.5 * gb)
    # an absent domain keeps its history but leaves this round's G (as in the paper's rule)
    ema.update(_obs([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], counts=[4, 4, 0]))
    G = np.asarray(ema.diagnostics()["rounds"][2]["gram"])
    assert np.all(G[2] == 0) and np.all(G[:, 2] == 0) and ema.gram_avg[2, 2] == pytest.approx((ga[2, 2] + gb[2, 2]) / 2)

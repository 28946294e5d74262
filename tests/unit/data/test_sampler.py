import numpy as np
import pytest

from domix.data.sampler import MixtureSampler, permute_index


def test_exact_draw_order_for_a_seed():
    """Golden order: a change here changes every run's data order (bump it deliberately)."""
    s = MixtureSampler(np.array([5, 3, 8, 2]), np.array([0.4, 0.1, 0.3, 0.2]), seed=7)
    got = [tuple(map(list, s.next(6))) for _ in range(3)]
    assert got == [
        ([0, 0, 1, 2, 2, 3], [2, 3, 2, 4, 1, 0]),
        ([0, 0, 1, 2, 2, 3], [4, 0, 1, 6, 7, 1]),
        ([0, 0, 1, 2, 2, 3], [1, 4, 0, 3, 0, 1]),
    ]


def test_same_seed_same_draws_other_seed_other_draws():
    a, b, c = (MixtureSampler(np.full(4, 50), np.ones(4), seed=s) for s in (1, 1, 2))
    da, db, dc = ([np.concatenate(x.next(32)) for _ in range(5)] for x in (a, b, c))
    assert all(np.array_equal(x, y) for x, y in zip(da, db))
    assert not all(np.array_equal(x, y) for x, y in zip(da, dc))


@pytest.mark.parametrize("m", [1, 8, 10_000])
def test_token_proportions_track_weights(m):
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(m))
    s = MixtureSampler(rng.integers(5, 500, m), w, seed=0)
    n = 0
    for _ in range(200):
        d, _ = s.next(64)
        n += len(d)
    share = s.draws / n
    # systematic sampling: every domain's count is within one slot per batch of its expectation
    assert np.all(np.abs(share - w) <= 200 / n + 1e-12)
    if m == 8:
        assert np.abs(share - w).max() < 2e-3


def test_weights_may_change_any_step_and_zero_weight_is_never_drawn():
    s = MixtureSampler(np.array([10, 10, 10]), np.array([1.0, 0.0, 1.0]), seed=3)
    for step in range(50):
        d, _ = s.next(8)
        assert 1 not in d
        if step == 25:
            s.set_weights(np.array([0.0, 1.0, 0.0]))
            assert set(s.next(8)[0].tolist()) == {1}
            s.set_weights(np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="non-negative"):
        s.set_weights(np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="2 weights for 3 domains"):
        s.set_weights(np.array([1.0, 1.0]))
    empty = MixtureSampler(np.array([4, 0]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="no sequences"):
        empty.set_weights(np.array([0.5, 0.5]))


def test_without_replacement_within_an_epoch_and_epoch_counts():
    n = np.array([7, 13])
    s = MixtureSampler(n, np.array([0.5, 0.5]), seed=11)
    seen = {0: [], 1: []}
    while s.draws.min() < 26:
        d, q = s.next(4)
        for di, qi in zip(d, q):
            seen[int(di)].append(int(qi))
    for d in (0, 1):
        first = seen[d][: n[d]]
        assert sorted(first) == list(range(n[d]))  # each sequence once per epoch
        second = seen[d][n[d] : 2 * n[d]]
        assert sorted(second) == list(range(n[d])) and second != first  # reshuffled
    assert np.allclose(s.epochs, s.draws / n)


def test_resume_equals_uninterrupted():
    args = (np.array([30, 40, 50]), np.array([0.2, 0.3, 0.5]))
    ref = MixtureSampler(*args, seed=5)
    ref_draws = [np.concatenate(ref.next(16)) for _ in range(20)]
    a = MixtureSampler(*args, seed=5)
    got = [np.concatenate(a.next(16)) for _ in range(8)]
    state = a.state_dict()
    b = MixtureSampler(args[0], np.ones(3), seed=99)  # state overrides seed and weights
    b.load_state_dict(state)
    got += [np.concatenate(b.next(16)) for _ in range(12)]
    assert all(np.array_equal(x, y) for x, y in zip(got, ref_draws))
    with pytest.raises(ValueError, match="different data"):
        MixtureSampler(np.array([1, 2, 3]), np.ones(3)).load_state_dict(state)


def test_ranks_draw_disjoint_shares_of_the_same_global_batch():
    n, w, world = np.array([40, 60, 25, 80]), np.array([0.1, 0.4, 0.2, 0.3]), 4
    ranks = [MixtureSampler(n, w, seed=2, rank=r, world_size=world) for r in range(world)]
    single = MixtureSampler(n, w, seed=2)
    for _ in range(10):
        shares = [r.next(5) for r in ranks]
        pairs = [(int(d), int(q)) for dd, qq in shares for d, q in zip(dd, qq)]
        assert len(pairs) == len(set(pairs)) == 20  # disjoint
        d1, q1 = single.next(20)
        assert sorted(pairs) == sorted(zip(d1.tolist(), q1.tolist()))  # together: the global batch
    assert all(np.array_equal(r.weights, ranks[0].weights) for r in ranks)


@pytest.mark.parametrize("n", [1, 2, 3, 17, 64, 1000, 4097])
def test_permute_index_is_a_bijection(n):
    for key in (0, 1, 2**63 + 5):
        y = permute_index(np.arange(n), np.full(n, n), np.full(n, key, dtype=np.uint64))
        assert sorted(y.tolist()) == list(range(n))

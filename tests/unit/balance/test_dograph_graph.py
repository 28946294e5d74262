"""DoGraph's array math: MMD closed form vs kernel estimates, k-means and matching, the graph, and
the constrained exponentiated-gradient solver against a generic optimiser."""

import numpy as np
import pytest

from domix.balance import graph


def _blobs(rng, k=3, n=30, D=8, noise=0.1):
    centers = graph.normalize_rows(rng.normal(size=(k, D)))
    labels = np.repeat(np.arange(k), n)
    return graph.normalize_rows(centers[labels] + noise * rng.normal(size=(k * n, D))), labels


def test_closed_form_mmd_equals_the_linear_kernel_estimate():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(7, 5)), rng.normal(size=(11, 5)) + 0.3
    closed = graph.mmd2_means(np.stack([X.mean(0), Y.mean(0)]))[0, 1]
    assert graph.mmd2(X, Y, "linear", unbiased=False) == pytest.approx(closed, rel=1e-12)
    # the unbiased U-statistic against its definition, written out with loops
    kxx = sum(X[i] @ X[j] for i in range(7) for j in range(7) if i != j) / (7 * 6)
    kyy = sum(Y[i] @ Y[j] for i in range(11) for j in range(11) if i != j) / (11 * 10)
    kxy = sum(X[i] @ Y[j] for i in range(7) for j in range(11)) / (7 * 11)
    assert graph.mmd2(X, Y, "linear", unbiased=True) == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-10)
    labels = np.r_[np.zeros(7, int), np.ones(11, int)]
    M = graph.mmd2_clusters(np.vstack([X, Y]), labels, np.array([0, 1]), "linear")
    assert M[0, 1] == pytest.approx(closed) and M[0, 0] == pytest.approx(0.0, abs=1e-12)


def test_rbf_unbiased_mmd_separates_different_distributions():
    rng = np.random.default_rng(1)
    X, labels = _blobs(rng, k=2, n=40, noise=0.3)
    same = graph.mmd2_clusters(X[labels == 0], rng.integers(0, 2, 40), np.array([0, 1]), "rbf")[0, 1]
    diff = graph.mmd2_clusters(X, labels, np.array([0, 1]), "rbf")[0, 1]
    assert diff > 0.1 and same < 0.05 * diff


def test_spherical_kmeans_recovers_blobs_and_warm_start_keeps_ids():
    rng = np.random.default_rng(2)
    X, truth = _blobs(rng)
    C, z, _ = graph.spherical_kmeans(X, 3, np.random.default_rng(0))
    assert all(len(set(z[truth == t])) == 1 for t in range(3)) and len(set(z)) == 3
    C2, z2, iters = graph.spherical_kmeans(X, 3, np.random.default_rng(9), init_KD=C)
    assert np.array_equal(z, z2) and np.allclose(C, C2) and iters == 1
    # shuffled centroids are matched back to their ids by the Hungarian step
    perm = np.array([2, 0, 1])
    assert np.array_equal(graph.match_clusters(C, C[perm]), perm)


def test_kmeans_handles_more_clusters_than_distinct_points():
    X = np.repeat(np.eye(4)[:2], 5, axis=0)
    C, z, _ = graph.spherical_kmeans(X, 5, np.random.default_rng(0))
    assert C.shape == (5, 4) and np.allclose(np.linalg.norm(C, axis=1), 1)
    assert len(set(z.tolist())) == 2


def test_knn_graph_and_laplacian():
    rng = np.random.default_rng(3)
    mu = rng.normal(size=(6, 4))
    M = graph.mmd2_means(mu)
    A, sigma2 = graph.knn_graph(M, neighbours=2)
    assert sigma2 == pytest.approx(np.median(M[~np.eye(6, dtype=bool)]))
    assert np.allclose(A, A.T) and np.all(np.diag(A) == 0) and np.all((A > 0).sum(1) >= 2)
    nearest = np.argsort(M + np.diag(np.full(6, np.inf)), axis=1)[:, 0]
    assert np.allclose(A[np.arange(6), nearest], np.exp(-M[np.arange(6), nearest] / sigma2))
    L = graph.laplacian(A)
    assert np.allclose(L.sum(1), 0) and np.linalg.eigvalsh(L).min() > -1e-10


def test_kl_projection_respects_the_box_and_the_simplex():
    rng = np.random.default_rng(4)
    w = rng.random(8) ** 4
    lo, hi = np.full(8, 0.05), np.full(8, 0.3)
    x = graph.kl_project(w, lo, hi)
    assert x.sum() == pytest.approx(1) and np.all(x >= lo - 1e-12) and np.all(x <= hi + 1e-12)
    free = (x > lo + 1e-9) & (x < hi - 1e-9)
    assert np.allclose(x[free] / w[free], (x[free] / w[free])[0])  # free weights are one scaling
    with pytest.raises(ValueError, match="infeasible"):
        graph.kl_project(w, np.full(8, 0.2), hi)


@pytest.mark.parametrize("gamma,quad", [(0.0, False), (3.0, False), (3.0, True)])
def test_eg_solver_finds_the_constrained_minimum(gamma, quad):
    from scipy.optimize import minimize

    rng = np.random.default_rng(5)
    K = 5
    u = rng.normal(size=K)
    A, _ = graph.knn_graph(graph.mmd2_means(rng.normal(size=(K, 3))), 2)
    L = graph.laplacian(A)
    F = rng.normal(size=(K, 4))
    Q = 2 * F @ F.T if quad else None  # a further PSD quadratic (DoGraph's MMD objective)
    w_prev = rng.dirichlet(np.ones(K))
    lo, hi = np.full(K, 0.05), np.full(K, 0.4)
    beta = 0.5
    w = graph.eg_solve(u, L, w_prev, gamma, beta, lo, hi, steps=2000, Q=Q)
    ref = minimize(lambda x: graph.objective(x, u, L, w_prev, gamma, beta, Q), np.full(K, 1 / K),
                   bounds=list(zip(lo, hi)), constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
                   method="SLSQP", options={"ftol": 1e-12, "maxiter": 500})
    f = graph.objective(w, u, L, w_prev, gamma, beta, Q)
    assert f <= ref.fun + 1e-6 and np.abs(w - ref.x).max() < 1e-3
    assert w.sum() == pytest.approx(1) and np.all(w >= lo - 1e-12) and np.all(w <= hi + 1e-12)
    if gamma == 0.0:  # unconstrained optimum in closed form: w ~ w_prev exp(u / beta), then clipped
        assert np.allclose(w, graph.kl_project(w_prev * np.exp(u / beta), lo, hi), atol=1e-8)

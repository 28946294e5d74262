"""Array math for DoGraph (``methods/dograph.py``): spherical k-means, cluster matching, MMD, the
domain graph and the graph-constrained exponentiated-gradient solver.

Plain numpy (and scipy's Hungarian solver), no torch, so every piece is tested with small arrays.
Shapes: ``X_ND`` N unit-norm feature rows of dimension D, ``C_KD`` K centroids, ``A_KK`` a graph.
"""

from __future__ import annotations

import numpy as np


def normalize_rows(X_ND: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    X = np.asarray(X_ND, dtype=np.float64)
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norm, out=np.zeros_like(X), where=norm > 0)


# ----------------------------------------------------------------------------- spherical k-means


def kmeans_pp_init(X_ND: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding with cosine distance 1 - <x, c>. When X has fewer than k distinct
    directions, the remaining centroids are random unit vectors (they stay empty)."""
    N, D = X_ND.shape
    C = np.zeros((k, D))
    C[0] = X_ND[rng.integers(N)]
    dist = np.maximum(1.0 - X_ND @ C[0], 0.0)
    for j in range(1, k):
        if dist.sum() <= 1e-12:  # every point coincides with a chosen centroid
            C[j:] = normalize_rows(rng.normal(size=(k - j, D)))
            break
        C[j] = X_ND[rng.choice(N, p=dist / dist.sum())]
        dist = np.minimum(dist, np.maximum(1.0 - X_ND @ C[j], 0.0))
    return C


def spherical_kmeans(
    X_ND: np.ndarray,
    k: int,
    rng: np.random.Generator,
    init_KD: np.ndarray | None = None,
    iters: int = 50,
    tol: float = 1e-7,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Lloyd's algorithm on the unit sphere: assign by cosine, centroid = normalised mean.

    ``init_KD`` warm-starts from given centroids (a previous refresh); otherwise k-means++. An empty
    cluster takes the point farthest from its own centroid in a cluster of two or more points (if
    that point is not a duplicate of its centroid); otherwise it keeps its centroid and stays empty.
    Returns (centroids [k, D], labels [N], iterations run).
    """
    X = normalize_rows(X_ND)
    C = normalize_rows(init_KD).copy() if init_KD is not None else kmeans_pp_init(X, k, rng)
    labels = np.full(len(X), -1)
    it = 0
    for it in range(1, iters + 1):  # noqa: B007  (the count is returned)
        sim_NK = X @ C.T
        new = sim_NK.argmax(1)
        own = sim_NK[np.arange(len(X)), new]
        sizes = np.bincount(new, minlength=k)
        for j in np.flatnonzero(sizes == 0):
            movable = sizes[new] > 1
            if not movable.any():
                break
            cand = np.where(movable, own, np.inf)
            i = int(cand.argmin())
            if cand[i] > 1.0 - 1e-9:  # only duplicates left: nothing to split
                break
            sizes[new[i]] -= 1
            new[i], own[i], sizes[j] = j, 1.0, 1
        sums = np.zeros_like(C)
        np.add.at(sums, new, X)
        C_new = np.where((sizes > 0)[:, None], normalize_rows(sums), C)
        shift = float(np.abs(C_new - C).max())
        C = C_new
        done = np.array_equal(new, labels) or shift < tol
        labels = new
        if done:
            break
    return C, labels, it


def match_clusters(old_KD: np.ndarray, new_KD: np.ndarray) -> np.ndarray:
    """``perm`` with new cluster i -> old id perm[i], maximising the total cosine (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-(new_KD @ old_KD.T))
    perm = np.empty(len(new_KD), dtype=np.int64)
    perm[rows] = cols
    return perm


# ----------------------------------------------------------------------------- MMD and the graph


def mmd2_means(mu_KD: np.ndarray) -> np.ndarray:
    """Linear-kernel MMD^2 between clusters in closed form: ||mu_j - mu_k||^2 [K, K]."""
    sq = (mu_KD**2).sum(1)
    return np.maximum(sq[:, None] + sq[None, :] - 2 * mu_KD @ mu_KD.T, 0.0)


def _kernel(X: np.ndarray, Y: np.ndarray, kernel: str, bandwidth2: float) -> np.ndarray:
    if kernel == "linear":
        return X @ Y.T
    d2 = np.maximum((X**2).sum(1)[:, None] + (Y**2).sum(1)[None, :] - 2 * X @ Y.T, 0.0)
    return np.exp(-d2 / (2 * bandwidth2))


def mmd2(X: np.ndarray, Y: np.ndarray, kernel: str = "linear", unbiased: bool = False,
         bandwidth2: float = 1.0) -> float:
    """MMD^2 between samples X [n, D] and Y [p, D] from kernel evaluations.

    Biased (V-statistic): mean k(X, X) + mean k(Y, Y) - 2 mean k(X, Y); with the linear kernel this
    equals ||mean X - mean Y||^2 exactly. Unbiased (U-statistic, Gretton et al. 2012): the
    within-set means leave out the diagonal; it needs two points per set (else the V-statistic).
    """
    kxx, kyy, kxy = (_kernel(X, X, kernel, bandwidth2), _kernel(Y, Y, kernel, bandwidth2),
                     _kernel(X, Y, kernel, bandwidth2))
    n, p = len(X), len(Y)
    if unbiased and n > 1 and p > 1:
        within = (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (p * (p - 1))
    else:
        within = kxx.mean() + kyy.mean()
    return float(within - 2 * kxy.mean())


def median_bandwidth2(X_ND: np.ndarray) -> float:
    """Median heuristic for the RBF kernel: the median pairwise squared distance (1 if all zero)."""
    sq = (X_ND**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * X_ND @ X_ND.T, 0.0)
    off = d2[np.triu_indices(len(X_ND), 1)]
    off = off[off > 0]
    return float(np.median(off)) if len(off) else 1.0


def mmd2_clusters(X_ND: np.ndarray, labels: np.ndarray, clusters: np.ndarray, kernel: str = "linear",
                  unbiased: bool = True) -> np.ndarray:
    """MMD^2 between the given clusters' samples [len(clusters)]^2. ``linear`` uses the closed form
    on the means; ``rbf`` the kernel estimate (unbiased by default) with the median bandwidth."""
    if kernel == "linear":
        mu = np.stack([X_ND[labels == c].mean(0) for c in clusters])
        return mmd2_means(mu)
    bw2 = median_bandwidth2(X_ND)
    parts = [X_ND[labels == c] for c in clusters]
    K = len(clusters)
    out = np.zeros((K, K))
    for i in range(K):
        for j in range(i + 1, K):
            out[i, j] = out[j, i] = max(mmd2(parts[i], parts[j], "rbf", unbiased, bw2), 0.0)
    return out


def knn_graph(mmd2_KK: np.ndarray, neighbours: int) -> tuple[np.ndarray, float]:
    """Edges A_jk = exp(-MMD^2_jk / sigma^2), sigma^2 = median off-diagonal MMD^2 (1 if zero),
    kept for each node's ``neighbours`` nearest nodes, symmetrised (an edge kept by either end).
    Returns (A [K, K] with zero diagonal, sigma^2)."""
    K = len(mmd2_KK)
    if K < 2:
        return np.zeros((K, K)), 1.0
    off = mmd2_KK[~np.eye(K, dtype=bool)]
    sigma2 = float(np.median(off))
    sigma2 = sigma2 if sigma2 > 0 else 1.0
    A = np.exp(-mmd2_KK / sigma2)
    np.fill_diagonal(A, 0.0)
    keep = np.zeros((K, K), dtype=bool)
    d = mmd2_KK + np.diag(np.full(K, np.inf))
    nearest = np.argsort(d, axis=1, kind="stable")[:, : min(neighbours, K - 1)]
    keep[np.repeat(np.arange(K), nearest.shape[1]), nearest.ravel()] = True
    keep |= keep.T
    return np.where(keep, A, 0.0), sigma2


def laplacian(A_KK: np.ndarray) -> np.ndarray:
    """L = D - A (positive semi-definite for symmetric non-negative A)."""
    return np.diag(A_KK.sum(1)) - A_KK


# ----------------------------------------------------------------------------- the weight update


def kl_project(w: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The KL (I-)projection of positive ``w`` onto {lo <= x <= hi, sum x = 1}: x = clip(c w, lo, hi)
    for the scalar c with sum x = 1. The sum is piecewise linear in c with breakpoints lo/w and
    hi/w, so c is found exactly: evaluate at every breakpoint, interpolate in the segment that
    crosses 1. Needs sum lo <= 1 <= sum hi."""
    if lo.sum() > 1 + 1e-12 or hi.sum() < 1 - 1e-12:
        raise ValueError(f"infeasible bounds: sum lo {lo.sum():.4g}, sum hi {hi.sum():.4g}")
    w = np.maximum(np.asarray(w, dtype=np.float64), 1e-300)
    bps = np.sort(np.concatenate([lo / w, hi / w]))
    sums = np.clip(bps[:, None] * w[None, :], lo, hi).sum(1)  # non-decreasing in c
    j = int(np.searchsorted(sums, 1.0))
    if j == 0:
        return lo.astype(np.float64).copy()
    if j == len(bps):
        return hi.astype(np.float64).copy()
    s0, s1 = sums[j - 1], sums[j]
    c = bps[j] if s1 == s0 else bps[j - 1] + (1.0 - s0) * (bps[j] - bps[j - 1]) / (s1 - s0)
    x = np.clip(c * w, lo, hi)
    free = (x > lo) & (x < hi)  # absorb the last rounding error in the free weights
    if free.any():
        x[free] += (1.0 - x.sum()) * x[free] / x[free].sum()
    return x


def objective(w, u, L, w_prev, gamma, beta, Q=None) -> float:
    """-u.w + (gamma / 2) w^T L w + (1 / 2) w^T Q w + beta KL(w || w_prev)."""
    kl = float(np.sum(np.where(w > 0, w * np.log(np.maximum(w, 1e-300) / w_prev), 0.0)))
    quad = 0.0 if Q is None else 0.5 * float(w @ Q @ w)
    return float(-u @ w + 0.5 * gamma * w @ L @ w + quad + beta * kl)


def eg_solve(u: np.ndarray, L: np.ndarray, w_prev: np.ndarray, gamma: float, beta: float,
             lo: np.ndarray, hi: np.ndarray, steps: int = 200, eta: float | None = None,
             Q: np.ndarray | None = None) -> np.ndarray:
    """Exponentiated-gradient (mirror) descent on the simplex with box constraints, from w_prev:

        w <- Proj_KL[lo, hi]( w * exp(-eta * grad) ),
        grad = -u + (gamma L + Q) w + beta (log(w / w_prev) + 1)

    Q (optional, positive semi-definite) is a further quadratic term (DoGraph's MMD objective). The
    step eta defaults to 1 / (beta + lambda_max(gamma L + Q)): the objective is convex and this
    step keeps the iteration a contraction.
    """
    w_prev = np.maximum(np.asarray(w_prev, dtype=np.float64), 1e-12)
    w_prev = w_prev / w_prev.sum()
    H = gamma * np.asarray(L, dtype=np.float64) + (0.0 if Q is None else np.asarray(Q, dtype=np.float64))
    if eta is None:
        lam = float(np.linalg.eigvalsh(H).max()) if len(H) else 0.0
        eta = 1.0 / (beta + max(lam, 0.0) + 1e-12)
    w = kl_project(w_prev, lo, hi)
    for _ in range(steps):
        grad = -u + H @ w + beta * (np.log(np.maximum(w, 1e-300) / w_prev) + 1.0)
        step = -eta * grad
        w_new = kl_project(w * np.exp(step - step.max()), lo, hi)
        done = np.abs(w_new - w).max() < 1e-13
        w = w_new
        if done:
            break
    return w


def pca2(X_ND: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projection on the top two principal components [N, 2] and their explained-variance ratios."""
    Xc = X_ND - X_ND.mean(0)
    if len(Xc) < 2:
        return np.zeros((len(Xc), 2)), np.zeros(2)
    _, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    k = min(2, len(s))
    Z = np.zeros((len(Xc), 2))
    Z[:, :k] = Xc @ Vt[:k].T
    var = s**2
    ratio = np.zeros(2)
    ratio[:k] = var[:k] / var.sum() if var.sum() > 0 else 0.0
    return Z, ratio

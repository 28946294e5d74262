"""k-means for Regroup: k-means++ init, several seeded restarts, faiss or scikit-learn Lloyd steps.

R&B (Ge et al. 2025, arXiv 2505.00358) clusters the training embeddings with k-means; evaluation
documents go to the nearest training centroid. domix's choices: the initialisation (greedy
k-means++, as scikit-learn does it) is domix's own numpy code, so every backend starts from the
same centroids for a seed; a backend only runs Lloyd iterations; restarts are compared on one
objective computed here; centroids are ordered by cluster size (c00 = largest).

Spherical (cosine) k-means L2-normalises the embeddings and assigns by inner product
(distance = 1 - cosine). faiss runs true spherical k-means (centroids re-normalised each
iteration); scikit-learn runs Euclidean k-means on the unit vectors and normalises the final
centroids (the usual approximation).

    km = KMeansConfig(clusterer="auto", spherical=True, n_init=3).fit(emb_SD, k=8, seed=0)
    labels_N, dist_N = assign(emb_ND, km.centroids_KD, spherical=True)

CLI: ``domix regroup run demo --k 8 --clusterer faiss --n-init 3``.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..config import Config, ConfigError
from ..registry import Registry

# a backend: (x_ND float32, init_KD, max_iter, spherical) -> centroids_KD after Lloyd iterations
Lloyd = Callable[[np.ndarray, np.ndarray, int, bool], np.ndarray]
CLUSTERERS: Registry[Lloyd] = Registry("clusterer")


@CLUSTERERS.register("sklearn")
def _sklearn_lloyd(x_ND: np.ndarray, init_KD: np.ndarray, max_iter: int, spherical: bool):
    try:
        from sklearn.cluster import KMeans
    except ImportError as e:
        raise ImportError(
            "the sklearn clusterer needs scikit-learn: pip install 'domix[embed]'"
        ) from e
    km = KMeans(len(init_KD), init=init_KD, n_init=1, max_iter=max_iter, tol=1e-6)
    return km.fit(x_ND).cluster_centers_.astype(np.float32)


@CLUSTERERS.register("faiss")
def _faiss_lloyd(x_ND: np.ndarray, init_KD: np.ndarray, max_iter: int, spherical: bool):
    try:
        import faiss
    except ImportError as e:
        raise ImportError("the faiss clusterer needs faiss-cpu: pip install 'domix[faiss]'") from e
    k, d = init_KD.shape
    km = faiss.Kmeans(
        d, k, niter=max_iter, spherical=spherical, max_points_per_centroid=len(x_ND), verbose=False
    )
    km.train(np.ascontiguousarray(x_ND), init_centroids=np.ascontiguousarray(init_KD))
    return np.asarray(km.centroids, dtype=np.float32)


def resolve_clusterer(name: str) -> str:
    if name == "auto":
        return "faiss" if importlib.util.find_spec("faiss") else "sklearn"
    if name not in CLUSTERERS:
        raise ConfigError(
            f"unknown clusterer '{name}'; known: auto, {', '.join(CLUSTERERS.names())}"
        )
    return name


def sq_norms(x_ND: np.ndarray) -> np.ndarray:
    """Squared row norms without an [N, D] temporary (einsum, not (x * x).sum(1))."""
    return np.einsum("nd,nd->n", x_ND, x_ND)


def normalize(x_ND: np.ndarray) -> np.ndarray:
    return x_ND / np.maximum(np.sqrt(sq_norms(x_ND)), 1e-12)[:, None]


def assign(
    x_ND: np.ndarray, centroids_KD: np.ndarray, spherical: bool, batch: int = 16384
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid and the distance to it (1 - cosine if spherical, else Euclidean)."""
    c_KD = np.asarray(centroids_KD, dtype=np.float32)
    c2_K = sq_norms(c_KD)
    labels_N = np.empty(len(x_ND), dtype=np.int32)
    dist_N = np.empty(len(x_ND), dtype=np.float32)
    for s in range(0, len(x_ND), batch):
        x_BD = np.asarray(x_ND[s : s + batch], dtype=np.float32)
        if spherical:
            sim_BK = normalize(x_BD) @ c_KD.T
            lab = sim_BK.argmax(1)
            labels_N[s : s + batch] = lab
            dist_N[s : s + batch] = 1.0 - sim_BK[np.arange(len(lab)), lab]
        else:
            d2_BK = sq_norms(x_BD)[:, None] - 2.0 * (x_BD @ c_KD.T) + c2_K
            lab = d2_BK.argmin(1)
            labels_N[s : s + batch] = lab
            dist_N[s : s + batch] = np.sqrt(np.maximum(d2_BK[np.arange(len(lab)), lab], 0.0))
    return labels_N, dist_N


def objective(x_ND: np.ndarray, centroids_KD: np.ndarray, spherical: bool) -> float:
    """Sum of (1 - cosine) if spherical, else of squared distances: lower is better."""
    _, dist_N = assign(x_ND, centroids_KD, spherical)
    return float((dist_N.astype(np.float64) ** (1 if spherical else 2)).sum())


def kmeans_plus_plus(x_ND: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++: each new centre is the best of 2 + log(k) D^2-weighted candidates
    (the candidate that most lowers the total squared distance)."""
    n = len(x_ND)
    trials = 2 + int(math.log(k))
    x2_N = sq_norms(x_ND)
    first = int(rng.integers(n))
    closest_N = np.maximum(x2_N - 2.0 * (x_ND @ x_ND[first]) + x2_N[first], 0.0)
    chosen = [first]
    for _ in range(1, k):
        total = float(closest_N.sum(dtype=np.float64))
        if total <= 0:  # fewer distinct points than k: pick rows at random
            cands = rng.integers(n, size=trials)
        else:
            cum = np.cumsum(closest_N, dtype=np.float64)
            cands = np.minimum(np.searchsorted(cum, rng.random(trials) * total), n - 1)
        d2_NT = x2_N[:, None] - 2.0 * (x_ND @ x_ND[cands].T) + x2_N[cands][None, :]
        d2_NT = np.minimum(closest_N[:, None], np.maximum(d2_NT, 0.0))
        best = int(d2_NT.sum(0, dtype=np.float64).argmin())
        chosen.append(int(cands[best]))
        closest_N = d2_NT[:, best]
    return np.ascontiguousarray(x_ND[chosen], dtype=np.float32)


@dataclass
class KMeansResult:
    centroids_KD: np.ndarray  # ordered by cluster size on the fit sample, largest first
    objective: float  # of the best restart, on the fit sample
    clusterer: str


@dataclass
class KMeansConfig(Config):
    clusterer: str = "auto"  # faiss when installed, else sklearn
    spherical: bool = True  # cosine k-means (embeddings are L2-normalised)
    n_init: int = 3  # restarts; the lowest objective wins
    max_iter: int = 50
    fit_sample: int = 100_000  # k-means is fitted on at most this many training documents

    def validate(self) -> None:
        if self.clusterer != "auto" and self.clusterer not in ("faiss", "sklearn"):
            raise ConfigError(
                f"cluster.clusterer: '{self.clusterer}' is not auto, faiss or sklearn"
            )
        for key in ("n_init", "max_iter", "fit_sample"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"cluster.{key} must be positive")

    def fit(self, x_ND: np.ndarray, k: int, seed: int) -> KMeansResult:
        """k-means on ``x_ND`` (the fit sample): n_init seeded restarts, best objective kept."""
        if k < 2:
            raise ConfigError(f"k must be at least 2, got {k}")
        if k > len(x_ND):
            raise ConfigError(
                f"k={k} is larger than the {len(x_ND)} training documents to cluster; choose a "
                f"smaller k (or a larger cluster.fit_sample)"
            )
        name = resolve_clusterer(self.clusterer)
        lloyd = CLUSTERERS.get(name)
        x_ND = np.ascontiguousarray(x_ND, dtype=np.float32)
        if self.spherical and not np.allclose(sq_norms(x_ND), 1.0, atol=4e-3):
            x_ND = normalize(x_ND)  # a copy only when rows are not unit vectors already
        rng = np.random.default_rng(seed)
        best: tuple[float, np.ndarray] | None = None
        for _ in range(self.n_init):
            init_KD = kmeans_plus_plus(x_ND, k, rng)
            c_KD = lloyd(x_ND, init_KD, self.max_iter, self.spherical)
            if self.spherical:
                c_KD = normalize(c_KD)
            obj = objective(x_ND, c_KD, self.spherical)
            if best is None or obj < best[0]:
                best = (obj, c_KD)
        obj, c_KD = best
        labels, _ = assign(x_ND, c_KD, self.spherical)
        sizes = np.bincount(labels, minlength=k)
        order = np.lexsort((np.arange(k), -sizes))  # largest first, ties by index
        return KMeansResult(np.ascontiguousarray(c_KD[order]), obj, name)

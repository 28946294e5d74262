import numpy as np
import pytest

from domix.config import ConfigError
from domix.regroup import KMeansConfig, assign
from domix.regroup.cluster import kmeans_plus_plus, normalize
from domix.regroup.report import contingency, nmi

CLUSTERERS = ["sklearn", "faiss"]


def blobs(n_per=200, k=4, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 4
    x = np.concatenate([c + rng.standard_normal((n_per, d)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(k), n_per)


@pytest.mark.parametrize("clusterer", CLUSTERERS)
def test_kmeans_recovers_planted_blobs_and_is_deterministic_for_a_seed(clusterer):
    if clusterer == "faiss":
        pytest.importorskip("faiss")
    x, truth = blobs()
    cfg = KMeansConfig(clusterer=clusterer, spherical=False, n_init=2)
    a, b = cfg.fit(x, 4, seed=7), cfg.fit(x, 4, seed=7)
    assert a.clusterer == clusterer
    assert np.array_equal(a.centroids_KD, b.centroids_KD)
    labels, dist = assign(x, a.centroids_KD, spherical=False)
    assert nmi(contingency(labels, truth, 4, 4)) > 0.99
    sizes = np.bincount(labels, minlength=4)
    assert (np.diff(sizes) <= 0).all()  # c00 is the largest cluster
    brute = np.linalg.norm(x[:, None, :] - a.centroids_KD[None], axis=2)
    assert np.array_equal(labels, brute.argmin(1))
    assert np.allclose(dist, brute.min(1), atol=1e-3)


def test_different_seeds_give_different_initialisations():
    x, _ = blobs(k=6)
    a = kmeans_plus_plus(x, 6, np.random.default_rng(0))
    b = kmeans_plus_plus(x, 6, np.random.default_rng(1))
    assert not np.array_equal(a, b)
    assert len({tuple(r) for r in a}) == 6  # distinct centres


@pytest.mark.parametrize("clusterer", CLUSTERERS)
def test_spherical_groups_by_direction_euclidean_by_magnitude(clusterer):
    """Two directions 30 degrees apart, norms 1..10: cosine k-means splits by angle, Euclidean
    k-means by distance from the origin."""
    if clusterer == "faiss":
        pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    angle = np.repeat([0.0, np.pi / 6], 300)
    r = rng.uniform(1, 10, 600)
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], 1).astype(np.float32)
    x += rng.normal(0, 0.01, x.shape).astype(np.float32)
    truth = (angle > 0).astype(int)
    sph = KMeansConfig(clusterer=clusterer, spherical=True).fit(x, 2, seed=0)
    euc = KMeansConfig(clusterer=clusterer, spherical=False).fit(x, 2, seed=0)
    lab_s, dist_s = assign(x, sph.centroids_KD, spherical=True)
    lab_e, _ = assign(x, euc.centroids_KD, spherical=False)
    assert nmi(contingency(lab_s, truth, 2, 2)) > 0.99
    assert nmi(contingency(lab_e, truth, 2, 2)) < 0.2
    assert np.allclose(np.linalg.norm(sph.centroids_KD, axis=1), 1, atol=1e-5)
    cos = (normalize(x) * sph.centroids_KD[lab_s]).sum(1)
    assert np.allclose(dist_s, 1 - cos, atol=1e-5)


def test_k_larger_than_the_documents_is_a_clear_error():
    x, _ = blobs(n_per=2, k=2)
    with pytest.raises(ConfigError, match="k=5 is larger than the 4 training documents"):
        KMeansConfig(clusterer="sklearn").fit(x, 5, seed=0)
    with pytest.raises(ConfigError, match="unknown clusterer|not auto, faiss or sklearn"):
        KMeansConfig.from_dict({"clusterer": "kmeans9000"})

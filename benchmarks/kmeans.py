"""k-means seconds on 100,000 x 384 embeddings with each available clusterer.

The data imitate sentence embeddings: 40 planted directions with Gaussian spread, L2-normalised,
float32, seeded. One fit = domix's greedy k-means++ init + Lloyd iterations (max 50) in the
backend + the objective; spherical (cosine) as Regroup's default. Assignment of all rows to the
centroids is timed separately.

    python benchmarks/kmeans.py            # faiss and sklearn, k = 32 and 128
    python benchmarks/kmeans.py --quick    # the default clusterer, k = 32

Last line: ``kmeans_seconds_100k: <seconds of one fit, k = 32, default clusterer>``.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np

from domix.regroup import KMeansConfig, assign
from domix.regroup.cluster import resolve_clusterer


def data(n: int = 100_000, d: int = 384, planted: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((planted, d)).astype(np.float32)
    x = centres[rng.integers(planted, size=n)] + 1.5 * rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    x = data()
    default = resolve_clusterer("auto")
    names = (
        [default]
        if args.quick
        else [
            c for c in ("faiss", "sklearn") if c == "sklearn" or importlib.util.find_spec("faiss")
        ]
    )
    ks = [32] if args.quick else [32, 128]
    print(f"{len(x):,} x {x.shape[1]} float32, spherical, 1 restart, max 50 iterations")
    results = {}
    for name in names:
        for k in ks:
            cfg = KMeansConfig(clusterer=name, spherical=True, n_init=1, max_iter=50)
            t0 = time.perf_counter()
            km = cfg.fit(x, k, seed=0)
            fit = time.perf_counter() - t0
            t0 = time.perf_counter()
            assign(x, km.centroids_KD, spherical=True)
            results[name, k] = fit
            print(
                f"{name:<8} k={k:<4} fit {fit:6.2f} s   assign all {time.perf_counter() - t0:5.2f} s"
                f"   objective {km.objective:10.1f}"
            )
    print(f"kmeans_seconds_100k: {results[default, 32]:.2f}")


if __name__ == "__main__":
    main()

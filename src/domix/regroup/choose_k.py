"""Choosing k: a silhouette sweep (R&B's rule) or short proxy-training runs (opt-in).

R&B (Ge et al. 2025, arXiv 2505.00358) sweeps a range of k and keeps the best silhouette score;
it also trained a model per k and found validation loss U-shaped in k on 3 of 4 datasets, as did
DoGraph (Xu et al. 2026) for its gradient clusters. Both rules are here:

- ``silhouette``: for each k in ``range(k_min, k_max + 1, k_step)``, k-means on the fit sample,
  silhouette (cosine when spherical) on a seeded subsample of it; the whole curve is reported.
- ``proxy``: for each k, regroup with that k, train a tiny model with ``stratified`` weights on
  the regrouped domains for a few steps, and read the macro validation loss on the ORIGINAL
  domains (the fixed yardstick); the lowest loss wins. Costs one short training run per k.

    domix regroup run demo --k auto --k-min 4 --k-max 24 --k-step 4
    domix regroup run demo --k auto --k-select proxy --k-min 4 --k-max 12 --k-step 4
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import ConfigError
from .cluster import KMeansConfig, assign, normalize
from .config import RegroupConfig

if TYPE_CHECKING:
    from ..corpus.store import Corpus

def silhouette(x_ND: np.ndarray, labels_N: np.ndarray, cosine: bool) -> float:
    try:
        from sklearn.metrics import silhouette_score
    except ImportError as e:
        raise ImportError(
            "the silhouette sweep needs scikit-learn: pip install 'domix[embed]'"
        ) from e
    if len(np.unique(labels_N)) < 2:
        return float("nan")
    return float(silhouette_score(x_ND, labels_N, metric="cosine" if cosine else "euclidean"))


def silhouette_sweep(
    emb_SD: np.ndarray, ks: list[int], kmeans: KMeansConfig, seed: int, sample: int = 5000
) -> list[dict[str, Any]]:
    """One row per k: silhouette on a seeded subsample, k-means objective, seconds."""
    ks = [k for k in ks if k <= len(emb_SD)]
    if not ks:
        raise ConfigError(f"every k in the sweep exceeds the {len(emb_SD)} documents to cluster")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(emb_SD), size=min(sample, len(emb_SD)), replace=False))
    x_sub = normalize(emb_SD[idx]) if kmeans.spherical else emb_SD[idx]
    curve = []
    for k in ks:
        t0 = time.perf_counter()
        km = kmeans.fit(emb_SD, k, seed)
        labels, _ = assign(x_sub, km.centroids_KD, kmeans.spherical)
        score = silhouette(x_sub, labels, cosine=kmeans.spherical)
        curve.append(
            {
                "k": k,
                "silhouette": round(score, 5),
                "objective": round(km.objective, 4),
                "seconds": round(time.perf_counter() - t0, 2),
            }
        )
    return curve


def best_k(curve: list[dict[str, Any]], key: str, higher_is_better: bool) -> int:
    scored = [r for r in curve if r.get(key) is not None and np.isfinite(r[key])]
    if not scored:
        raise ConfigError(f"no k in the sweep produced a finite {key}")
    pick = max if higher_is_better else min
    return int(pick(scored, key=lambda r: r[key])["k"])


def proxy_sweep(
    corpus: Corpus,
    cfg: RegroupConfig,
    ks: list[int],
    name: str,
    make_artifact: Callable[[int, str], object],
) -> list[dict[str, Any]]:
    """One short stratified training run per k on ``regrouped:<name>-proxy-k<k>``.

    ``make_artifact(k, name)`` writes the regroup artifact for one k (the caller's engine, so
    embeddings are computed once). Validation loss is read on the original domains, so runs with
    different k are comparable.
    """
    from ..data.cluster_store import artifact_dir
    from ..run import RunConfig, train

    curve = []
    for k in ks:
        t0 = time.perf_counter()
        sub_name = f"{name}-proxy-k{k}"
        make_artifact(k, sub_name)
        run_cfg = RunConfig().merge(
            [
                *cfg.choose_k.proxy_overrides,
                f"out_dir={artifact_dir(corpus, sub_name) / 'proxy_run'}",
                f"data.corpus={corpus.path}",
                f"data.domains=regrouped:{sub_name}",
                "data.eval_domains=original",
                "mixing.method=stratified",
                f"train.seed={cfg.seed}",
            ]
        )
        result = train(run_cfg)
        if result.eval is None:
            raise ConfigError("the proxy runs must evaluate: set train.eval_every <= train.steps")
        curve.append(
            {
                "k": k,
                "val_loss_macro": round(result.eval.macro, 5),
                "val_loss_worst": round(float(result.eval.worst[1]), 5),
                "seconds": round(time.perf_counter() - t0, 2),
            }
        )
    return curve

"""Regroup plots: the k-selection curve, and a 2-D PCA map coloured by cluster and by original domain.

domix regroup run demo --k auto      # writes k_curve.png and map.png next to report.md
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate.plots import pyplot, save_figure


def plot_k_curve(curve: list[dict[str, Any]], key: str, best: int, out: str | Path) -> Path:
    """Score against k (silhouette, or proxy validation loss), the chosen k marked."""
    plt = pyplot()
    ks = [r["k"] for r in curve]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(ks, [r[key] for r in curve], marker="o")
    ax.axvline(best, color="tab:red", ls="--", lw=1, label=f"chosen k = {best}")
    ax.set_xlabel("k (number of clusters)")
    ax.set_ylabel(key.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("choosing k")
    return save_figure(fig, Path(out))


def pca_2d(x_ND: np.ndarray) -> np.ndarray:
    """Projection on the first two principal components (SVD of the centred data)."""
    x = np.asarray(x_ND, dtype=np.float64)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T


def plot_map(
    emb_SD: np.ndarray,
    cluster_S: np.ndarray,
    domain_S: np.ndarray,
    cluster_names: list[str],
    domain_names: list[str],
    out: str | Path,
) -> Path:
    """Two panels of the same PCA projection: coloured by cluster, and by original domain."""
    plt = pyplot()
    xy = pca_2d(emb_SD)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    for ax, labels, names, title in (
        (axes[0], cluster_S, cluster_names, "regrouped clusters"),
        (axes[1], domain_S, domain_names, "original domains"),
    ):
        cmap = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
        for i, name in enumerate(names):
            m = labels == i
            if m.any():
                ax.scatter(xy[m, 0], xy[m, 1], s=4, alpha=0.6, color=cmap(i % cmap.N), label=name)
        ax.set_title(f"{title} ({len(names)})")
        ax.set_xlabel("PC 1")
        if len(names) <= 20:
            ax.legend(markerscale=3, fontsize=7, loc="best", ncol=1 + len(names) // 11)
    axes[0].set_ylabel("PC 2")
    fig.suptitle(f"PCA map of {len(xy):,} training documents")
    return save_figure(fig, Path(out))

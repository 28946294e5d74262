"""DoGraph's analysis figures from a run's ``mixing.json`` (written by the dograph method).

    from domix.evaluate.dograph_plots import unit_groups, plot_feature_pca, plot_domain_graph
    groups = unit_groups(prepare_data(cfg))            # original domain of each training domain
    plot_feature_pca("runs/dg/mixing.json", groups, "pca.png")   # per-sample gradients, coloured
    plot_domain_graph("runs/dg/mixing.json", "graph.png")        # model-centric domains + weights

The paper's observation to check: human domains separate in gradient space early in training and
merge later. ``separation`` measures it as the share of the probe features' variance explained by
the original domains (between-domain variance / total variance, an R^2), computed exactly from the
per-unit mean-feature Gram that each refresh records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import io
from .plots import pyplot, save_figure


def unit_groups(data, spec: str = "original") -> list[str]:
    """For each training domain of a run (``RunData``), the ``spec`` domain most of its training
    documents belong to (identity when training on ``spec`` itself)."""
    from ..data.domains import resolve_domains

    outer = resolve_domains(data.corpus, spec)
    split = data.corpus.read(["split"]).column(0).to_numpy(zero_copy_only=False)
    names = list(data.domains.names)
    out = []
    for name in data.train.names:
        docs = (data.domains.labels == names.index(name)) & (split == "train") & (outer.labels >= 0)
        counts = np.bincount(outer.labels[docs], minlength=len(outer))
        out.append(outer.names[int(counts.argmax())] if counts.sum() else "?")
    return out


def separation(refresh: dict[str, Any], groups: list[str]) -> float:
    """Share of the probe's feature variance between groups of units (R^2 of the group labels).

    Features are unit vectors, so total variance = 1 - ||mean||^2; between-group variance =
    sum_g (n_g / N) ||mean_g||^2 - ||mean||^2, all from the unit-mean Gram and unit counts.
    """
    G = np.asarray(refresh["unit_gram"])
    n = np.asarray(refresh["unit_counts"], dtype=np.float64)
    g = np.array([groups[u] for u in refresh["units"]])
    N = n.sum()
    grand = n @ G @ n / N**2
    between = sum((n * (g == k)) @ G @ (n * (g == k)) / ((n * (g == k)).sum() * N) for k in set(g)) - grand
    total = 1.0 - grand
    return float(between / total) if total > 1e-12 else 0.0


def _refreshes(mixing_json: str | Path) -> list[dict[str, Any]]:
    diag = io.read_json(mixing_json).get("diagnostics", {})
    if "refreshes" not in diag:
        raise ValueError(f"{mixing_json} has no DoGraph refreshes (was the method dograph?)")
    if not diag["refreshes"]:
        raise ValueError(f"{mixing_json}: the run ended before DoGraph's first refresh")
    return diag["refreshes"]


def plot_feature_pca(mixing_json: str | Path, groups: list[str], out: str | Path, panels: int = 4) -> Path:
    """PCA of the per-sample gradient features at ``panels`` refreshes spread over training,
    coloured by each sample's group (original domain), plus the separation R^2 over training."""
    plt = pyplot()
    refs = _refreshes(mixing_json)
    pick = sorted(set(np.linspace(0, len(refs) - 1, min(panels, len(refs))).round().astype(int).tolist()))
    names = sorted(set(groups))
    colours = {k: plt.cm.tab10(i % 10) for i, k in enumerate(names)}
    fig, axes = plt.subplots(1, len(pick) + 1, figsize=(3.6 * (len(pick) + 1), 3.4), squeeze=False)
    for ax, i in zip(axes[0], pick):
        r = refs[i]
        Z = np.asarray(r["pca"])
        lab = [groups[u] for u in r["sample_unit"]]
        for k in names:
            sel = np.array([x == k for x in lab])
            if sel.any():
                ax.scatter(Z[sel, 0], Z[sel, 1], s=9, color=colours[k], label=k, alpha=0.75)
        ev = r["pca_variance"]
        ax.set_title(f"step {r['step']}  R2={separation(r, groups):.2f}", fontsize=9)
        ax.set_xlabel(f"PC1 ({ev[0]:.0%})", fontsize=8)
        ax.set_ylabel(f"PC2 ({ev[1]:.0%})", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7, markerscale=1.5)
    ax = axes[0][-1]
    ax.plot([r["step"] for r in refs], [separation(r, groups) for r in refs], marker=".")
    ax.set_title("variance explained by original domain", fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    fig.suptitle("Per-sample LM-head gradient features (PCA), coloured by original domain", fontsize=10)
    return _save(fig, out)


def plot_domain_graph(mixing_json: str | Path, out: str | Path, refresh: int = -1) -> Path:
    """The domain graph of one refresh: nodes placed by classical MDS of MMD^2, size = weight,
    edge width = A_jk; the label of each node lists its weight and its largest base units."""
    plt = pyplot()
    data = io.read_json(mixing_json)
    r = _refreshes(mixing_json)[refresh]
    clusters, A, w = r["clusters"], np.asarray(r["graph"]), np.asarray(r["cluster_weights"])
    D2 = np.asarray(r["mmd2"])
    K = len(clusters)
    J = np.eye(K) - 1.0 / K
    vals, vecs = np.linalg.eigh(-0.5 * J @ D2 @ J)
    top = np.argsort(vals)[::-1][:2]
    P = vecs[:, top] * np.sqrt(np.maximum(vals[top], 0))
    if K < 3 or not np.isfinite(P).all() or np.allclose(P, 0):
        angle = 2 * np.pi * np.arange(K) / max(K, 1)
        P = np.c_[np.cos(angle), np.sin(angle)]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    amax = A.max() if A.size and A.max() > 0 else 1.0
    for i in range(K):
        for j in range(i + 1, K):
            if A[i, j] > 0:
                ax.plot(*P[[i, j]].T, color="0.5", lw=0.5 + 3 * A[i, j] / amax, zorder=1)
    ax.scatter(P[:, 0], P[:, 1], s=3000 * w + 30, c=w, cmap="viridis", zorder=2, edgecolors="k")
    names = data.get("domains", [])
    assign = np.asarray(r["assign"])
    for i, c in enumerate(clusters):
        members = [names[u] for u in np.flatnonzero(assign == c)] if names else []
        text = f"c{c:02d} w={w[i]:.3f}\n" + ", ".join(m.split("/")[-1] for m in members[:3])
        text += f" +{len(members) - 3}" if len(members) > 3 else ""
        ax.annotate(text, P[i], fontsize=7, ha="center", va="bottom", xytext=(0, 8), textcoords="offset points")
    ax.set_title(f"DoGraph domain graph at step {r['step']} (edges: exp(-MMD^2/sigma^2), kNN)", fontsize=10)
    ax.margins(0.25)
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, out)


def _save(fig, out: str | Path) -> Path:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, out)

"""The comparison's figures: macro validation-loss curves (mean and range over seeds), mixture
weights over training, R&B's per-round weights and gradient norms, its domain-gradient Gram
matrices, and the regroup map."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .. import io
from ..evaluate.plots import plot_loss_curves, plot_mixtures, pyplot, save_figure
from .grid import Comparison
from .table import REFERENCE, Group, group_results


def plot_curves(cmp: Comparison, out: Path) -> Path:
    """One panel per domain set; per method the mean macro validation loss over seeds, shaded
    between the best and worst seed; the reference (stratified on the original domains) is dashed
    on the other panels."""
    plt = pyplot()
    groups = group_results(cmp.results)
    layers = list(dict.fromkeys(g.split(" / ")[1] for g in groups))
    fig, axes = plt.subplots(1, len(layers), figsize=(6.4 * len(layers), 4.4), squeeze=False, sharey=True)
    colors = {m: f"C{i % 10}" for i, m in enumerate(dict.fromkeys(g.split(" / ")[0] for g in groups))}
    for ax, layer in zip(axes.flat, layers):
        for label, g in groups.items():
            method, lay = label.split(" / ")
            if lay == layer:
                steps, y = _seed_curves(g)
                ax.plot(steps, y.mean(0), marker=".", color=colors[method], label=f"{method} (n={len(y)})")
                if len(y) > 1:
                    ax.fill_between(steps, y.min(0), y.max(0), color=colors[method], alpha=0.15)
            elif label == REFERENCE:  # what every other domain set is measured against
                steps, y = _seed_curves(g)
                ax.plot(steps, y.mean(0), ls="--", color="0.45", label=f"{label} (n={len(y)}), the reference")
        ax.set_title(f"trained on {layer} domains")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes.flat[0].set_ylabel("macro validation loss, original domains (nats/token)")
    later = [v for r in cmp.results for _, v in r.curve()[1:]]  # the first evaluation is far above the rest
    if later:
        lo, hi = min(later), max(later)
        axes.flat[0].set_ylim(lo - 0.05 * (hi - lo) - 1e-3, hi + 0.05 * (hi - lo) + 1e-3)
    fig.suptitle(f"corpus '{cmp.config.corpus}', {cmp.config.tokens:,} tokens per run; band: range over seeds")
    return save_figure(fig, out)


def _seed_curves(g: Group) -> tuple[list[int], np.ndarray]:
    """The evaluation steps every seed of a cell has, and its macro losses there [seeds, steps]."""
    curves = [dict(r.curve()) for r in g.runs.values()]
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    return steps, np.array([[c[s] for s in steps] for c in curves])


def plot_domain_curves(cmp: Comparison, out: Path) -> Path | None:
    """Every original domain's validation loss over training, one line per run at the first seed
    (runs whose folder is here: a piece read from the results file alone has no per-domain curves)."""
    seed = cmp.config.seeds[0]
    runs = {r.cell.group: r.out_dir for r in cmp.results
            if r.cell.seed == seed and (r.out_dir / "metrics.jsonl").exists()}
    return plot_loss_curves(runs, out, title=f"validation loss per original domain (seed {seed})") if runs else None


def plot_mixture_grid(cmp: Comparison, out: Path) -> Path | None:
    """Weights over training of every non-stratified method at the first seed."""
    seed = cmp.config.seeds[0]
    runs = {r.cell.group: r.out_dir for r in cmp.results
            if r.cell.seed == seed and r.cell.method != "stratified" and (r.out_dir / "mixing.json").exists()}
    if not runs:
        return None
    return plot_mixtures(runs, out, title=f"mixture weights over training (seed {seed})")


def _method_runs(cmp: Comparison, method: str, key: str) -> list[tuple[Any, dict[str, Any]]]:
    """(result, mixing.json) of every run of ``method`` at the first seed whose diagnostics hold
    its per-round records under ``key``."""
    seed = cmp.config.seeds[0]
    runs = [r for r in cmp.results if r.cell.method == method and r.cell.seed == seed
            and (r.out_dir / "mixing.json").exists()]
    runs = [(r, io.read_json(r.out_dir / "mixing.json")) for r in runs]
    return [(r, mix) for r, mix in runs if mix.get("diagnostics", {}).get(key)]


def _rnb_runs(cmp: Comparison) -> list[tuple[Any, dict[str, Any]]]:
    return _method_runs(cmp, "rnb", "rounds")


def _plot_rounds(runs: list[tuple[Any, dict[str, Any]]], key: str, panels: list[tuple[str, Any, bool]],
                 out: Path) -> Path | None:
    """One row per run, one column per panel (title, rounds -> (names, Y [rounds, n]), log scale),
    and a last column with the L1 change of the weights from one round to the next."""
    if not runs:
        return None
    plt = pyplot()
    n = len(panels) + 1
    fig, axes = plt.subplots(len(runs), n, figsize=(5 * n, 3.8 * len(runs)), squeeze=False)
    for (r, mix), row in zip(runs, axes):
        rounds = mix["diagnostics"][key]
        steps = [x["step"] for x in rounds]
        for ax, (title, series, log) in zip(row, panels):
            names, Y = series(rounds, mix)
            for j, name in enumerate(names):
                ax.plot(steps, np.clip(Y[:, j], 1e-12, None) if log else Y[:, j], marker=".", label=name)
            ax.set_title(f"{r.cell.group}: {title}", fontsize=9)
            if log:
                ax.set_yscale("log")
        row[-1].plot(steps, [x.get("l1_change", np.nan) for x in rounds], marker=".", color="k")
        row[-1].set_title(f"{r.cell.group}: L1 change of the weights", fontsize=9)
        row[-1].set_ylim(bottom=0)
        for ax in row:
            ax.set_xlabel("step")
        row[0].legend(fontsize=6, ncol=2)
    return save_figure(fig, out)


def plot_rnb_rounds(cmp: Comparison, out: Path) -> Path | None:
    """Per R&B run at the first seed: the weights each round set, the diagonal of the Gram
    (||mean LM-head gradient||^2 of each domain) the round measured, on a log scale, and the L1
    change of the weights from the previous round."""
    def weights(rounds, mix):
        return mix["domains"], np.asarray([x["weights"] for x in rounds])

    def diag(rounds, mix):
        return mix["domains"], np.asarray([np.diag(x["gram"]) for x in rounds])

    return _plot_rounds(_rnb_runs(cmp), "rounds", [("weights set at the end of each round", weights, False),
                                                   ("G_ii = ||mean gradient||^2 in the round", diag, True)], out)


def plot_dograph_rounds(cmp: Comparison, out: Path) -> Path | None:
    """Per DoGraph run at the first seed, by model-centric domain (ids matched across refreshes):
    the constrained weights each refresh set, where the utility alone (trust region, no graph, no
    box) would have moved them, and the L1 change of the unit weights."""
    def by_cluster(field):
        def series(rounds, mix):
            m = mix["diagnostics"]["clusters"]
            Y = np.full((len(rounds), m), np.nan)
            for i, x in enumerate(rounds):
                Y[i, x["clusters"]] = x[field]
            return [f"c{j:02d}" for j in range(m)], Y
        return series

    runs = [(r, mix) for r, mix in _method_runs(cmp, "dograph", "refreshes")
            if "unconstrained" in mix["diagnostics"]["refreshes"][0]]
    return _plot_rounds(runs, "refreshes", [("cluster weights set at each refresh", by_cluster("cluster_weights"), False),
                                            ("utility alone: w_prev exp(u / beta)", by_cluster("unconstrained"), False)],
                        out)


def plot_gram(cmp: Comparison, out: Path) -> Path | None:
    """R&B's last-round Gram matrix G_ij = <g_i, g_j> of domain gradients (LM head), and the same
    as cosines, for each R&B run at the first seed."""
    runs = _rnb_runs(cmp)
    if not runs:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(len(runs), 2, figsize=(11, 4.6 * len(runs)), squeeze=False)
    for (r, mix), row in zip(runs, axes):
        grams = [r["gram"] for r in mix["diagnostics"]["rounds"]]
        G = np.asarray(grams[-1])
        d = np.sqrt(np.clip(np.diag(G), 1e-30, None))
        names = mix["domains"]
        for ax, M, title, cmap in ((row[0], G, "Gram G (last round)", "viridis"),
                                   (row[1], G / d[:, None] / d[None, :], "cosine", "RdBu_r")):
            kw = {"vmin": -1, "vmax": 1} if cmap == "RdBu_r" else {}
            im = ax.imshow(M, cmap=cmap, **kw)
            fig.colorbar(im, ax=ax, fraction=0.046)
            ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
            ax.set_yticks(range(len(names)), names, fontsize=7)
            ax.set_title(f"{r.cell.group}: {title}, round {len(grams)}", fontsize=9)
            if len(names) <= 10:
                for i in range(len(names)):
                    for j in range(len(names)):
                        ax.text(j, i, f"{M[i, j]:.2g}", ha="center", va="center", fontsize=6,
                                color="k" if cmap == "RdBu_r" else "w")
    return save_figure(fig, out)


def copy_regroup_map(cmp: Comparison, out: Path) -> Path | None:
    """The regroup artifact's PCA map of embeddings, coloured by cluster."""
    if cmp.regroup is None or not (cmp.regroup.path / "map.png").exists():
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(out) as tmp:
        shutil.copyfile(cmp.regroup.path / "map.png", tmp)
    return out

"""Plots people would rather look at than read: validation-loss curves per run and domain."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .. import io
from ..train.metrics import read_metrics


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (imported on first use: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out: str | Path) -> Path:
    """Lay out, write the PNG atomically, and free the figure."""
    out = Path(out)
    fig.tight_layout()
    with io.atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    pyplot().close(fig)
    return out


def plot_loss_curves(
    runs: dict[str, str | Path], out: str | Path, title: str = "Validation loss"
) -> Path:
    """One panel per evaluation domain plus the macro average; one line per run.

    ``runs`` maps a label to a run's out_dir (its metrics.jsonl is read). Returns the PNG path.
    """
    plt = pyplot()

    series: dict[str, list[dict]] = {
        label: read_metrics(Path(d) / "metrics.jsonl", "eval") for label, d in runs.items()
    }
    keys = sorted(
        {k for rows in series.values() for r in rows for k in r if k.startswith("loss/val/")}
    )
    panels = ["loss/val_macro", *keys]
    cols = min(3, len(panels))
    rows_n = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.2 * rows_n), squeeze=False)
    for ax, key in zip(axes.flat, panels):
        for label, rows in series.items():
            pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), marker=".", label=label)
        ax.set_title("macro average" if key == "loss/val_macro" else key.removeprefix("loss/val/"))
        ax.set_xlabel("step")
        ax.set_ylabel("nats / token")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, out)


def plot_mixtures(runs: dict[str, str | Path], out: str | Path, title: str = "Mixture weights") -> Path:
    """Stacked areas of the domain weights over training steps, one panel per run (``mixing.json``),
    four panels a row."""
    plt = pyplot()
    cols = min(4, len(runs))
    rows_n = math.ceil(len(runs) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.6 * cols, 3.4 * rows_n), squeeze=False)
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    for ax, (label, d) in zip(axes.flat, runs.items()):
        mix = json.loads((Path(d) / "mixing.json").read_text())
        steps = [h["step"] for h in mix["history"]]
        weights = np.array([h["weights"] for h in mix["history"]])
        logged = (Path(d) / "metrics.jsonl").read_text().splitlines()
        last = max(steps[-1] + 1, *(json.loads(line)["step"] for line in logged))
        xs = np.repeat(steps + [last], 2)[1:-1]  # step function: weights hold until the next change
        ys = np.repeat(weights, 2, axis=0)
        ax.stackplot(xs, ys.T, labels=mix["domains"] if len(mix["domains"]) <= 12 else None)
        if len(mix["domains"]) <= 12:
            ax.legend(fontsize=6, loc="upper right", ncol=2, framealpha=0.6)
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.set_ylim(0, 1)
        ax.set_xlim(0, last)
    for ax in axes[:, 0]:
        ax.set_ylabel("weight")
    fig.suptitle(title)
    return save_figure(fig, out)

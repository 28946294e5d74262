"""Checkpoints: one ``step_<N>.pt`` file per save, written atomically, the newest ``keep`` kept.

A checkpoint holds everything a resumed run needs to continue exactly as if never stopped: model,
optimizer, scheduler, sampler, callbacks (the mixing method's state), RNG states, the step, and
the fingerprints of the data it was trained on (a resume on different data is refused).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from .. import faults, io
from ..config import ConfigError


class ResumeError(ConfigError):
    """A checkpoint that does not belong to this run (other data, schedule, method or settings)."""

_NAME = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def list_checkpoints(out_dir: str | Path) -> list[tuple[int, Path]]:
    d = checkpoint_dir(out_dir)
    if not d.exists():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    found = list_checkpoints(out_dir)
    return found[-1][1] if found else None


def save_checkpoint(out_dir: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    path = checkpoint_dir(out_dir) / f"step_{step:08d}.pt"
    remove_partial(path.parent)
    with io.atomic_path(path) as tmp:
        torch.save(state, tmp)
        faults.point("checkpoint_written")
    faults.point("checkpoint_renamed")
    prune(out_dir, keep)
    return path


def prune(out_dir: str | Path, keep: int) -> None:
    """Keep the newest ``keep`` checkpoints (all when ``keep`` <= 0)."""
    for _, old in list_checkpoints(out_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def remove_partial(folder: str | Path) -> list[Path]:
    """Delete what an interrupted atomic write left in ``folder`` (``.<name>.<random>.tmp``, see
    ``io.atomic_path``): a killed process never reaches the cleanup in its ``finally``. Only the
    run's one writer calls this (rank 0, before its own write or on resume)."""
    folder = Path(folder)
    stale = sorted(folder.glob(".*.tmp")) if folder.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The saved state; a file that is not a readable checkpoint is a ``ResumeError`` naming it."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises pickle, zip and runtime errors for damaged files
        raise ResumeError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e)[:200]}). "
                          "Move it away to resume from the one before it, or use a new out_dir.") from e
    if not isinstance(state, dict) or "step" not in state and "model" not in state:
        raise ResumeError(f"{path}: not a domix checkpoint (no step or model in it)")
    return state

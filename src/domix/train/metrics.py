"""One sink for metrics: appended to ``metrics.jsonl`` (and TensorBoard when installed), rank 0 only.

Stable names: ``loss/train``, ``loss/train/<domain>``, ``loss/val/<domain>``, ``loss/val_macro``,
``loss/val_token``, ``loss/val_worst``, ``ppl/val/<domain>``, ``mix/weight/<domain>``, ``lr``,
``tokens``, ``perf/tokens_per_s``. Each line is ``{"step": s, "kind": "train"|"eval"|..., ...}``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricsSink:
    def __init__(self, path: str | Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._tb = None
        self.records = 0  # lines in the file (a checkpoint stores it: see ``rewind``)
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                self.records = sum(1 for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip())
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self._tb = SummaryWriter(str(self.path.parent / "tensorboard"))
                except ImportError:  # tensorboard is an optional extra
                    self._tb = None

    def log(self, step: int, kind: str, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "kind": kind, **{k: _clean(v) for k, v in metrics.items()}}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self.records += 1
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)

    def rewind(self, step: int, records: int | None = None) -> None:
        """Drop records after ``step`` (on resume, so the file equals an uninterrupted run's).

        With ``records`` (the count a checkpoint saved), keep exactly the first ``records`` lines:
        this also drops what was logged at ``step`` after the checkpoint was written (a mixing
        method's update at the start of the next step), which the resumed run logs again."""
        if not self.enabled or not self.path.exists():
            return
        lines = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if records is not None:
            kept = lines[:records]
        else:
            kept = [line for line in lines if json.loads(line)["step"] <= step]
        self.records = len(kept)
        from ..io import write_text

        write_text(self.path, "".join(line + "\n" for line in kept))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _clean(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def read_metrics(path: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    rows = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return [r for r in rows if kind is None or r["kind"] == kind]

"""The grid's results file: one JSON line per finished piece (one method x domain set x seed run).

A grid too large for one sitting is run in pieces: each finished run appends its line at once, and
a rerun of the same command skips every piece the file already holds (same piece name, i.e. the
same run config, method and parameters, and the same data fingerprints), on this machine or on
another one where the run folders do not exist. The file is meant to be committed
(``--results benchmarks/results/compare-<config>.jsonl``). A line holds what the tables need without
the run folder: the run's summary (final macro, token-average, worst and per-domain validation
losses, tokens, steps, wall time, the final mixture, extra compute), the validation curve, the
mixture's history, and where it was measured (CPU flags, cores, git commit, domix version, time).

Appends are one ``write`` of a whole line followed by ``fsync``; a line cut short by a kill is the
file's last line, and is dropped (with a message) before the next append. A malformed line anywhere
else is an error naming the file and line.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from .. import __version__, io
from ..train.metrics import read_metrics


class ResultsFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []
        self._good_bytes: int | None = None  # where an interrupted last line starts
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        offset = 0
        for i, line in enumerate(lines, 1):
            last = i == len(lines) or (i == len(lines) - 1 and lines[-1] == b"")
            if line.strip():
                try:
                    self.records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    if not last:
                        raise ValueError(f"{self.path}:{i}: not a JSON line ({e.msg}); fix or delete that line") from None
                    print(f"{self.path}:{i}: dropping an incomplete last line (a run stopped while writing it)",
                          flush=True)
                    self._good_bytes = offset
                    break
            offset += len(line) + 1

    def find(self, piece: str, fingerprints: dict[str, str]) -> dict[str, Any] | None:
        return next((r for r in self.records if r["piece"] == piece and r["fingerprints"] == fingerprints), None)

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._good_bytes is not None:
            os.truncate(self.path, self._good_bytes)
            self._good_bytes = None
        with open(self.path, "ab") as f:
            f.write((json.dumps(record, default=io._json_default, sort_keys=True) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())
        self.records.append(record)


def piece_record(piece: str, cell, out_dir: Path, summary: dict[str, Any], compare: dict[str, Any]) -> dict[str, Any]:
    """The line of a finished run (read from its folder); ``compare``: the grid's config."""
    curve = [[r["step"], r["loss/val_macro"]] for r in read_metrics(out_dir / "metrics.jsonl", "eval")
             if r.get("loss/val_macro") is not None]
    mixing = out_dir / "mixing.json"
    history = io.read_json(mixing)["history"] if mixing.exists() else []
    return {
        "piece": piece, "compare": compare, "method": cell.method, "domains": cell.layer, "seed": cell.seed,
        "fingerprints": summary.get("fingerprints", {}), "summary": summary, "curve": curve,
        "mixture_history": history, "measured": provenance(),
    }


def provenance() -> dict[str, Any]:
    """Where a piece was measured: CPU flags that change speed, cores, git commit, domix version."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"cpu_flags": io.speed_flags(), "cores": os.cpu_count(), "commit": commit,
            "domix": __version__, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

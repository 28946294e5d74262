"""Kill ``domix compare`` inside its second run, run the same command again: the finished run is read
back (not trained again), the interrupted one resumes from its checkpoint, and every run's result
(validation losses, mixture) equals an uninterrupted comparison's (wall times aside)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEMO_CAP

RUN = ["model.preset=micro", "train.batch_size=4", "train.warmup_steps=2", "train.eval_every=4",
       "train.eval_tokens_per_domain=512", "train.log_every=2", "train.checkpoint_every=2",
       "train.eval_batch_size=8", "train.threads=1"]
STEPS = 8  # per run: tokens = STEPS x batch 4 x context 64 (micro)


def compare(out: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "domix.cli", "compare", "--out", str(out), "--corpus", "demo",
           "--methods", "stratified,rnb", "--domains", "original", "--seeds", "0", "--tokens", str(STEPS * 4 * 64),
           "--set", f"max_docs_per_domain={DEMO_CAP}", "--set", "params.rnb.round_steps=2",
           "--set", f"run=[{','.join(RUN)}]"]
    env = {**os.environ, "DOMIX_FAULT": fault or ""}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_kill_compare_and_rerun(demo_corpus, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    proc = compare(whole)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = compare(killed, f"step:{STEPS + 5}")  # one process: step 13 is step 5 of the second run
    assert proc.returncode == -9, proc.stderr[-3000:]
    (first,) = [p for p in (killed / "runs").iterdir() if (p / "summary.json").exists()]
    stamp = (first / "summary.json").stat().st_mtime_ns
    proc = compare(killed)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (first / "summary.json").stat().st_mtime_ns == stamp  # read back, not trained again
    assert "resumed from" in proc.stdout  # the second run continued from its checkpoint
    runs = [r for r in (whole / "runs").iterdir() if (r / "summary.json").exists()]
    assert len(runs) == 2
    for run in runs:  # run folders are named by a hash of their config
        a, b = (json.loads((r / "summary.json").read_text()) for r in (run, killed / "runs" / run.name))
        assert (a["eval"], a["mixture"], a["steps"]) == (b["eval"], b["mixture"], b["steps"]), run.name
    assert not list(killed.rglob("*.tmp"))

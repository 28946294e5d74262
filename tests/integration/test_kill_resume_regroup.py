"""Kill ``domix regroup run`` while it fills the embedding cache, run it again, get the same result.

The hashing embedder (no model) on the 600-document demo slice, 128 rows per chunk (5 chunks).
A kill right after a chunk is recorded as done must not embed that chunk again; a kill after a
chunk is written but before it is recorded loses only that chunk. Either way the rerun's cache and
cluster assignment equal an uninterrupted run's, and no half-written file is left.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from domix import io

CHUNK = 128


def regroup(corpus_dir: Path, name: str, cache: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "domix.cli", "regroup", "run", str(corpus_dir), "--k", "5", "--name", name,
           "--embedder", "hashing", "--set", f"embed.chunk_rows={CHUNK}"]
    env = {**os.environ, "DOMIX_CACHE": str(cache), "DOMIX_FAULT": fault or ""}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def outputs(cache: Path, name: str) -> tuple[bytes, dict]:
    (emb,) = cache.glob("embeddings/*/embeddings.f16")
    (art,) = cache.glob(f"regroup/*/{name}/assignment.parquet")
    return emb.read_bytes(), pq.read_table(art).to_pydict()


@pytest.mark.slow
@pytest.mark.parametrize("fault, resumed_at", [("embed_chunk_committed:2", 2 * CHUNK), ("embed_chunk_written:3", 2 * CHUNK)])
def test_kill_during_embedding_and_rerun(demo_corpus, tmp_path, fault, resumed_at):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    proc = regroup(demo_corpus.path, "k5", whole)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = regroup(demo_corpus.path, "k5", killed, fault)
    assert proc.returncode == -9, f"the fail point {fault} was not reached:\n{proc.stderr[-3000:]}"
    (progress,) = killed.glob("embeddings/*/progress.json")
    assert io.read_json(progress)["done_rows"] == resumed_at
    proc = regroup(demo_corpus.path, "k5", killed)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the rerun starts at the first row not recorded: nothing recorded is embedded again
    assert f"resuming at row {resumed_at:,} of {demo_corpus.num_docs:,}" in proc.stdout + proc.stderr
    assert outputs(killed, "k5") == outputs(whole, "k5")
    assert not list(killed.rglob("*.tmp"))

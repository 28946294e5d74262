"""Kill ``domix train`` at an exact moment, resume it, and get the uninterrupted run's result.

Each case runs ``domix train`` as a subprocess three ways: uninterrupted; with ``DOMIX_FAULT`` set
so that it SIGKILLs itself at a fail point (``domix/faults.py``: after a step, inside a checkpoint
write, between a checkpoint's rename and the pruning of older ones); then ``--resume`` on the killed
run's folder. The resumed run must equal the uninterrupted one bit for bit on CPU: the final model
and optimizer state, the sampler's state (so its order from there on), the mixture history and
result (mixing.json) and every metrics line (timings aside), and leave no half-written file.

One online method per signal kind: rnb (split LM-head gradients), dograph (per-sample gradient
sketches and validation sketches), odm (training loss only). A few kill points run in the default
suite; the full sweep is ``pytest -m faults``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import DEMO_CAP

STEPS, EVERY = 12, 4  # checkpoints at steps 4, 8 and 12
METHODS = {
    "rnb": ["mixing.params.round_steps=3"],
    "dograph": ["mixing.params.round_steps=3", "mixing.params.clusters=3", "mixing.params.probe_steps=2",
                "mixing.signals.sample_grad_features.val_samples=8"],
    "odm": [],
}
TIMING = ("perf/", "wall")  # metric keys that measure time, not the run


def train(out: Path, method: str, fault: str | None = None, resume: bool = False) -> subprocess.CompletedProcess:
    config = Path(__file__).parents[2] / "configs" / "tiny.yaml"
    sets = [
        f"out_dir={out}", f"data.max_docs_per_domain={DEMO_CAP}", "model.preset=micro",
        f"train.steps={STEPS}", f"train.checkpoint_every={EVERY}", "train.keep_checkpoints=2",
        "train.eval_every=6", "train.log_every=2", "train.warmup_steps=2", "train.batch_size=8",
        "train.eval_tokens_per_domain=1024", "train.progress=false", "train.threads=1",
        f"mixing.method={method}", *METHODS[method],
    ]
    cmd = [sys.executable, "-m", "domix.cli", "train", "-c", str(config)]
    cmd += [a for s in sets for a in ("--set", s)] + (["--resume"] if resume else [])
    env = {**os.environ, "DOMIX_FAULT": fault or ""}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def final_state(out: Path) -> dict:
    return torch.load(out / "checkpoints" / f"step_{STEPS:08d}.pt", map_location="cpu", weights_only=False)


def metrics(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in rows]


def assert_same(a, b, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif hasattr(a, "shape"):  # numpy
        assert (a == b).all(), where
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"  # NaN equals NaN here


@pytest.fixture(scope="module")
def uninterrupted(demo_corpus, tmp_path_factory):
    """One uninterrupted run per method, made once."""
    runs = {}

    def get(method: str) -> Path:
        if method not in runs:
            out = tmp_path_factory.mktemp(f"whole-{method}")
            proc = train(out, method)
            assert proc.returncode == 0, proc.stderr[-3000:]
            runs[method] = out
        return runs[method]

    return get


def kill_and_resume(uninterrupted, tmp_path, method: str, fault: str) -> None:
    whole = uninterrupted(method)
    out = tmp_path / "killed"
    killed = train(out, method, fault)
    assert killed.returncode == -9, f"the fail point {fault} was not reached:\n{killed.stderr[-3000:]}"
    resumed = train(out, method, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = final_state(whole), final_state(out)
    for key in ("step", "model", "optimizer", "scheduler", "sampler", "callbacks", "torch_rng", "metrics_records"):
        assert_same(a[key], b[key], key)
    assert_same(json.loads((whole / "mixing.json").read_text()), json.loads((out / "mixing.json").read_text()), "mixing.json")
    assert metrics(whole) == metrics(out)
    assert not list(out.rglob("*.tmp")), "a half-written file was left behind"
    kept = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert kept == sorted(p.name for p in (whole / "checkpoints").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize(
    "method, fault",
    [("rnb", "step:6"), ("dograph", "checkpoint_written:2"), ("odm", "checkpoint_renamed:1")],
)
def test_kill_and_resume(uninterrupted, tmp_path, method, fault):
    kill_and_resume(uninterrupted, tmp_path, method, fault)


SWEEP = [f"step:{n}" for n in (1, 3, 4, 5, 9, 11)] + [
    f"{p}:{n}" for p in ("checkpoint_written", "checkpoint_renamed") for n in (1, 2, 3)
]


@pytest.mark.faults
@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("fault", SWEEP)
def test_kill_and_resume_sweep(uninterrupted, tmp_path, method, fault):
    kill_and_resume(uninterrupted, tmp_path, method, fault)

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
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def train(out: Path, method: str, fault: str | None = None, resume: bool = False,
          nproc: int = 1) -> subprocess.CompletedProcess:
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
    cmd += ["--nproc", str(nproc)] if nproc > 1 else []
    env = {**os.environ, "DOMIX_FAULT": fault or ""}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def final_state(out: Path) -> dict:
    return torch.load(out / "checkpoints" / f"step_{STEPS:08d}.pt", map_location="cpu", weights_only=False)


def metrics(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in rows]


def assert_same(a, b, where: str = "", tol: float = 0.0) -> None:
    """Equal bit for bit, or with ``tol`` floats equal to that relative (and absolute) tolerance."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.shape == b.shape, where
        same = torch.equal(a, b) or (tol > 0 and a.is_floating_point()
                                     and torch.allclose(a.double(), b.double(), rtol=tol, atol=tol))
        assert same, where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}", tol)
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]", tol)
    elif hasattr(a, "shape"):  # numpy
        assert (a == b).all() or (tol > 0 and np.allclose(a, b, rtol=tol, atol=tol)), where
    elif isinstance(a, float) and tol > 0:
        assert math.isclose(a, b, rel_tol=tol, abs_tol=tol) or (a != a and b != b), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"  # NaN equals NaN here


@pytest.fixture(scope="module")
def uninterrupted(demo_corpus, tmp_path_factory):
    """One uninterrupted run per method (and number of ranks), made once."""
    runs = {}

    def get(method: str, nproc: int = 1) -> Path:
        if (method, nproc) not in runs:
            out = tmp_path_factory.mktemp(f"whole-{method}-{nproc}")
            proc = train(out, method, nproc=nproc)
            assert proc.returncode == 0, proc.stderr[-3000:]
            runs[method, nproc] = out
        return runs[method, nproc]

    return get


def kill_and_resume(uninterrupted, tmp_path, method: str, fault: str, nproc: int = 1) -> None:
    whole = uninterrupted(method, nproc)
    out = tmp_path / "killed"
    killed = train(out, method, fault, nproc=nproc)
    if nproc == 1:
        assert killed.returncode == -9, f"the fail point {fault} was not reached:\n{killed.stderr[-3000:]}"
    else:  # the ranks die; the launcher reports it and fails
        assert killed.returncode != 0 and "SIGKILL" in killed.stderr, killed.stderr[-3000:]
    resumed = train(out, method, resume=True, nproc=nproc)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = final_state(whole), final_state(out)
    for key in ("step", "model", "optimizer", "scheduler", "torch_rng", "metrics_records"):
        assert_same(a[key], b[key], key)
    # With several ranks the checkpoint holds the ranks' partial-round signal sums added up, and the
    # resumed round adds them in another order: the mixture is equal up to that rounding.
    tol = 0.0 if nproc == 1 else 1e-6
    assert_same(a["sampler"], b["sampler"], "sampler", tol)
    assert_same(a["callbacks"], b["callbacks"], "callbacks", tol)
    assert_same(json.loads((whole / "mixing.json").read_text()), json.loads((out / "mixing.json").read_text()),
                "mixing.json", tol)
    assert_same(metrics(whole), metrics(out), "metrics.jsonl", tol)
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


@pytest.mark.slow
@pytest.mark.distributed
def test_kill_and_resume_two_ranks(uninterrupted, tmp_path):
    """2 gloo ranks, killed after step 6: the model, optimizer and data order are equal bit for bit;
    the mixture up to the order in which the ranks' partial-round gradient sums are added."""
    kill_and_resume(uninterrupted, tmp_path, "rnb", "step:6", nproc=2)


SWEEP = [f"step:{n}" for n in (1, 3, 4, 5, 9, 11)] + [
    f"{p}:{n}" for p in ("checkpoint_written", "checkpoint_renamed") for n in (1, 2, 3)
]


@pytest.mark.faults
@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("fault", SWEEP)
def test_kill_and_resume_sweep(uninterrupted, tmp_path, method, fault):
    kill_and_resume(uninterrupted, tmp_path, method, fault)

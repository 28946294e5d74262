"""Data-parallel training on one machine: N processes, the gloo backend, one model replica each.

    results = launch(cfg, nproc=2)     # one summary per rank; rank 0 writes metrics and checkpoints
    domix train -c configs/tiny.yaml --nproc 2

Each rank draws a disjoint share of every global batch (the sampler is rank-aware), gradients are
averaged by DistributedDataParallel, and per-domain statistics (training losses, evaluation sums, a
method's signals) are all-reduced, so every rank computes the same mixture. Data caches are built in
the parent before the workers start. Under ``torchrun``, call ``train()`` directly after
``torch.distributed.init_process_group``.
"""

from __future__ import annotations

import faulthandler
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .run import RunConfig, prepare_data, train


def _worker(rank: int, world: int, init_file: str, cfg: dict[str, Any], resume: bool, out: str, env: dict[str, str]) -> None:
    faulthandler.enable()  # a native crash (SIGABRT, SIGSEGV) prints every thread's Python stack
    os.environ.update(env)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    result = train(RunConfig.from_dict(cfg), resume=resume)
    summary = {**result.summary, "mixture_weights": result.mixture.weights.tolist(), "rank": rank}
    Path(out, f"rank{rank}.json").write_text(json.dumps(summary))
    # Tear down only once every rank is done talking. After an error nothing is torn down here: a
    # peer may still wait in a collective, and destroying the group under it can abort the process
    # before spawn has written this rank's traceback; the exception propagates as it is.
    dist.barrier()
    dist.destroy_process_group()


def launch(cfg: RunConfig, nproc: int, resume: bool = False) -> list[dict[str, Any]]:
    """Run ``train(cfg)`` in ``nproc`` gloo processes; return each rank's summary."""
    if nproc < 2:
        raise ValueError("launch needs at least 2 processes; call train() for one")
    prepare_data(cfg)  # build every cache once, before the workers race for it
    env = {k: v for k, v in os.environ.items() if k.startswith(("DOMIX_", "HF_"))}
    with tempfile.TemporaryDirectory() as tmp:
        init_file = str(Path(tmp) / "store")
        mp.spawn(_worker, args=(nproc, init_file, cfg.to_dict(), resume, tmp, env), nprocs=nproc, join=True)
        return [json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(nproc)]

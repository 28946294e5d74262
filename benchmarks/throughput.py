"""Training-loop throughput: domix's Trainer against a bare PyTorch loop, same model, same batches.

Both loops train a freshly initialised copy of the same model (same seed) on the same pre-drawn
batches of the demo corpus, in the same process, alternating bare/domix for several rounds. Timing
starts after warm-up steps and ends at the last step (the final checkpoint is not timed). The bare
loop is what a researcher would write: forward, mean cross-entropy, backward, clip, AdamW, schedule.

    python benchmarks/throughput.py             # gpt2-small preset (4 layers, d 256), 6 rounds of 25 steps
    python benchmarks/throughput.py --quick     # tiny preset (2 layers, d 128), 4 rounds of 10 steps
    python benchmarks/throughput.py --profile   # + one profiled pair: the ops of both loops side by side

Last line: ``throughput_ratio: <domix tokens/s / bare tokens/s>`` (median over rounds).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from _harness import bench_config, cpu_profiler, profile_table, timed_run
from domix.data.sampler import MixtureSampler
from domix.run import prepare_data
from domix.train.loop import lr_lambda


def bare_loop(model, data, batches, cfg, warmup: int, profiler=None) -> float:
    # the same optimizer set-up as the Trainer (decay on matrices only, as nanoGPT does): a single
    # group with decay everywhere measured ~10% slower here, which is not the loop's doing
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    total = len(batches)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_lambda(s, cfg.warmup_steps, total, cfg.min_lr_ratio)
    )
    model.train()

    def step(dom, seq):  # a function, so the step's tensors (134 MB of logits) are freed on return
        x = torch.from_numpy(data.train.gather(dom, seq))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = model(input_ids=x[:, :-1]).logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for i, (dom, seq) in enumerate(batches):
        if i == warmup:
            if profiler is not None:
                profiler.start()
            t0 = time.perf_counter()
        step(dom, seq)
    seconds = time.perf_counter() - t0
    if profiler is not None:
        profiler.stop()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--preset", default=None)
    ap.add_argument("--steps", type=int, default=None, help="measured steps per loop")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast in both loops")
    ap.add_argument("--profile", action="store_true",
                    help="after the rounds, profile one more run of each loop and print their ops side by side")
    ap.add_argument("--top", type=int, default=20, help="ops shown by --profile")
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    preset = args.preset or ("tiny" if args.quick else "gpt2-small")
    steps = args.steps or (10 if args.quick else 25)
    rounds = args.rounds or (4 if args.quick else 6)
    warmup = 3
    run = bench_config(preset, warmup + steps, progress=True, bf16=args.bf16)
    data = prepare_data(run)
    cfg = run.train
    # the domix loop draws from a sampler with this seed; the bare loop gets the same draws
    draw = MixtureSampler(data.train.num_sequences, np.ones(len(data.train.names)), seed=cfg.seed)
    batches = [draw.next(cfg.batch_size) for _ in range(warmup + steps)]
    tokens = steps * cfg.batch_size * data.train.context_length
    bare, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):  # alternate which loop goes first, so drift favours neither
            for which in ("bare", "domix") if r % 2 == 0 else ("domix", "bare"):
                if which == "bare":
                    model = run.model.build(data.tokenizer.vocab_size, cfg.seed)
                    bare.append(tokens / bare_loop(model, data, batches, cfg, warmup))
                else:
                    ours.append(tokens / timed_run(run, data, warmup, f"{tmp}/r{r}")["seconds"])
            print(
                f"round {r}: bare {bare[-1]:,.0f} tok/s   domix {ours[-1]:,.0f} tok/s   ratio {ours[-1] / bare[-1]:.3f}",
                flush=True,
            )
        if args.profile:
            model = run.model.build(data.tokenizer.vocab_size, cfg.seed)
            prof = {"bare": cpu_profiler(), "domix": cpu_profiler()}
            wall = {"bare": bare_loop(model, data, batches, cfg, warmup, prof["bare"]),
                    "domix": timed_run(run, data, warmup, f"{tmp}/profile", profiler=prof["domix"])["seconds"]}
            print(f"\nprofile of {steps} steps (self CPU ms per op; delta = domix - bare):")
            print(profile_table({n: (prof[n], wall[n]) for n in prof}, args.top), flush=True)
    ratio = statistics.median(o / b for o, b in zip(ours, bare))
    print(
        f"preset {preset}, batch {cfg.batch_size} x {data.train.context_length}, {steps} measured steps, "
        f"{torch.get_num_threads()} threads, bf16 {cfg.bf16}: bare {statistics.median(bare):,.0f} tok/s, "
        f"domix {statistics.median(ours):,.0f} tok/s"
    )
    assert math.isfinite(ratio)
    print(f"throughput_ratio: {ratio:.3f}")


if __name__ == "__main__":
    main()

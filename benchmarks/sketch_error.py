"""Error of the bounded-memory gradient sketch on the Gram matrix and on R&B's weights, real data.

Trains one round with R&B's exact per-domain LM-head accumulators, then folds the accumulated
gradients with the count sketch used by ``mode: sketch`` (a sketch is linear, so folding the round's
sum equals sketching every step) for several sizes and seeds, and compares:

- the relative Frobenius error of the Gram of mean gradients, ||G_sketch - G|| / ||G||;
- the largest change in the R&B mixture softmax(3 G pbar / ||G pbar||).

The domains are real domain layers of the demo corpus (``original``: 5 domains; ``subdomain``: the
finer human labels), so the mean gradients differ as they do in use and R&B's weights move.

    python benchmarks/sketch_error.py            # gpt2-small, original and subdomain, one round of 50 steps
    python benchmarks/sketch_error.py --quick    # tiny model, original, 20 steps

Last line: ``sketch_gram_rel_error: <error at 1024 rows on the first layer, mean over seeds>``.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch

from _harness import bench_config, timed_run
from domix.balance.base import Domains, Observation, build_method
from domix.run import prepare_data


def rnb_weights(gram, counts, target):
    rnb = build_method("rnb")
    rnb.start(Domains(tuple(map(str, range(len(counts)))), np.ones(len(counts)), target))
    obs = Observation(
        1, 1, counts, np.ones(len(counts)), {"domain_grad_gram": {"gram": gram, "counts": counts}}
    )
    return rnb.update(obs).weights.weights


def fold(acc_MVD: torch.Tensor, rows: int, seed: int) -> torch.Tensor:
    """The same count sketch as HeadSplit(mode="sketch", rows, seed), applied to whole sums."""
    V = acc_MVD.shape[1]
    g = torch.Generator().manual_seed(seed)
    bucket = torch.randint(0, rows, (V,), generator=g)
    sign = (torch.randint(0, 2, (V, 1), generator=g) * 2 - 1).float()
    out = torch.zeros(acc_MVD.shape[0], rows, acc_MVD.shape[2])
    for i in range(acc_MVD.shape[0]):
        out[i].index_add_(0, bucket, acc_MVD[i] * sign)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    preset, steps, layers = ("tiny", 20, ["original"]) if args.quick else ("gpt2-small", 50, ["original", "subdomain"])
    headline = None
    for layer in layers:
        run = bench_config(preset, steps, domains=layer, warmup_steps=50)
        data = prepare_data(run)
        def sums(mixing):  # the round's per-domain gradient sums, before the signal closes
            split = mixing.signals["domain_grad_gram"].split
            return split.acc.clone(), split.counts.numpy().copy()

        with tempfile.TemporaryDirectory() as tmp:  # one round that never ends: sums stay in place
            acc, counts = timed_run(run, data, 1, tmp, "rnb", {"round_steps": steps + 1}, capture=sums)["captured"]
        m = len(counts)
        target = data.target
        norm = np.outer(np.maximum(counts, 1), np.maximum(counts, 1))
        flat = acc.flatten(1)
        exact_gram = (flat @ flat.t()).double().numpy()
        exact_w = rnb_weights(exact_gram, counts, target)
        V, D = acc.shape[1:]
        print(
            f"{layer}, m={m} ({preset}, V={V}, d={D}): exact accumulators {acc.numel() * 4 / 2**20:.0f} MiB",
            flush=True,
        )
        for rows in (256, 1024, 4096):
            errs, dws = [], []
            for seed in range(5):
                sk = fold(acc, rows, seed).flatten(1)
                gram = (sk @ sk.t()).double().numpy()
                errs.append(
                    np.linalg.norm((gram - exact_gram) / norm) / np.linalg.norm(exact_gram / norm)
                )
                dws.append(np.abs(rnb_weights(gram, counts, target) - exact_w).max())
            print(
                f"  rows {rows:>5} ({m * rows * D * 4 / 2**20:6.1f} MiB): Gram rel. error {np.mean(errs):.4f} "
                f"(max {np.max(errs):.4f}), max |dp| {np.mean(dws):.4f} (max {np.max(dws):.4f}, "
                f"largest weight {exact_w.max():.3f})",
                flush=True,
            )
            if headline is None and rows == 1024:
                headline = float(np.mean(errs))
    print(f"sketch_gram_rel_error: {headline:.4f}")


if __name__ == "__main__":
    main()

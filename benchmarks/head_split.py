"""R&B's split LM-head gradient in isolation: the head's weight gradient as domix computes it (per-domain
blocks, their sum, the accumulators) against the one GEMM a plain backward does, same tensors.

A step of the gpt2-small benchmark shape (batch 16 x 256 tokens, vocabulary 8,192, d 256) is sorted
by domain the way the sampler sorts it; with m domains under stratified weights a batch holds
min(m, 16) of them. Both sides alternate in one process; the last line is the worst median ratio.
Peak memory is what the signal holds: the accumulators (m x V x d, or m x rows x d for the sketch)
and the step's block buffer (P x V x d).

    python benchmarks/head_split.py                 # m = 8, 64, 1024; exact and sketch; 7 repeats
    python benchmarks/head_split.py --quick         # m = 8, 64; 3 repeats

Last line: ``head_split_ratio: <worst (split / one GEMM) median>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from domix.balance.signals.grad_gram import HeadSplit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--domains", default=None, help="comma-separated m values")
    ap.add_argument("--modes", default="exact,sketch")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=256, help="tokens per sequence")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--rows", type=int, default=1024, help="sketch rows")
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    ms = [int(x) for x in (args.domains or ("8,64" if args.quick else "8,64,1024")).split(",")]
    reps = args.repeats or (3 if args.quick else 7)
    B, T, V, D = args.batch, args.tokens, args.vocab, args.dim
    g = torch.Generator().manual_seed(0)
    e_BTV = torch.randn(B, T, V, generator=g) / (B * T)
    h_BTD = torch.randn(B, T, D, generator=g)
    print(f"batch {B} x {T}, V {V}, d {D}, {torch.get_num_threads()} threads; ms per step, median of {reps}")
    worst = 0.0
    for mode in args.modes.split(","):
        for m in ms:
            head = torch.nn.Linear(D, V, bias=False)
            split = HeadSplit(head, m, mode, args.rows)
            dom_B = torch.sort(torch.arange(B) * m // B).values  # stratified: B evenly spread domains
            one, ours = [], []
            for r in range(reps + 1):  # the first pair warms up (buffer, page faults) and is dropped
                for which in ("one", "split") if r % 2 == 0 else ("split", "one"):
                    t0 = time.perf_counter()
                    if which == "one":
                        e_BTV.flatten(0, 1).t() @ h_BTD.flatten(0, 1)
                    else:
                        split.set_domains(dom_B)
                        split.weight_grad(e_BTV, h_BTD)
                    dt = time.perf_counter() - t0
                    if r:
                        (one if which == "one" else ours).append(dt)
            ratio = statistics.median(s / o for s, o in zip(ours, one))
            worst = max(worst, ratio)
            mem = (split.acc.numel() + split._buf.numel()) * 4 / 2**20
            print(f"{mode:<6} m={m:<5} domains per batch {len(torch.unique(dom_B)):>3}: one GEMM "
                  f"{statistics.median(one) * 1e3:7.1f}  split {statistics.median(ours) * 1e3:7.1f}  "
                  f"ratio {ratio:.3f}  (+{(statistics.median(ours) - statistics.median(one)) * 1e3:.1f} ms)  "
                  f"memory {mem:,.0f} MiB", flush=True)
            split.remove()
            del split
    print(f"head_split_ratio: {worst:.3f}")


if __name__ == "__main__":
    main()

"""MixtureSampler draws per second at 8 and 10,000 domains.

A draw is one (domain, sequence) pair of a global batch. Each call of ``next`` draws one global
batch; throughput is reported for a typical batch (16 sequences) and a large one (512).

    python benchmarks/sampler.py            # 2 s per setting
    python benchmarks/sampler.py --quick    # 0.3 s per setting

Last line: ``sampler_draws_per_s: <draws/s at 10,000 domains, batch 512>``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from domix.data.sampler import MixtureSampler


def rate(m: int, batch: int, seconds: float) -> float:
    rng = np.random.default_rng(0)
    s = MixtureSampler(rng.integers(1, 5000, m), rng.dirichlet(np.ones(m)), seed=0)
    for _ in range(10):
        s.next(batch)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        s.next(batch)
        n += batch
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    seconds = 0.3 if ap.parse_args().quick else 2.0
    results = {}
    for m in (8, 10_000):
        for batch in (16, 512):
            results[m, batch] = rate(m, batch, seconds)
            print(f"{m:>6} domains, batch {batch:>4}: {results[m, batch]:>12,.0f} draws/s")
    print(f"sampler_draws_per_s: {results[10_000, 512]:.0f}")


if __name__ == "__main__":
    main()

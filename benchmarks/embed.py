"""Embedding throughput of the real model (all-MiniLM-L6-v2, offline) on real demo documents.

Measures documents per second through domix's embedder (``EmbedConfig(...).build().embed``) at
128 tokens in fp32 and under bf16 and fp16 autocast, on a seeded sample of demo-corpus documents,
and the cosine of each to fp32. Full mode adds fp32 at 256 tokens.

    python benchmarks/embed.py             # 3,000 documents per setting (~5 minutes)
    python benchmarks/embed.py --quick     # 400 documents per setting (~35 s)

Last line: ``embed_docs_per_s: <documents/s at 128 tokens with the default precision>``
(``precision="auto"``: bf16 where the CPU has AMX, else fp32).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from domix.corpus import build_corpus  # noqa: E402
from domix.regroup import EmbedConfig  # noqa: E402
from domix.regroup.embed import resolve_precision  # noqa: E402


def rate(texts: list[str], max_tokens: int, precision: str) -> tuple[float, np.ndarray]:
    emb = EmbedConfig(max_tokens=max_tokens, precision=precision, batch_size=64).build()
    emb.embed(texts[:64])  # warm-up
    t0 = time.perf_counter()
    out = np.concatenate([emb.embed(texts[i : i + 1024]) for i in range(0, len(texts), 1024)])
    return len(texts) / (time.perf_counter() - t0), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 400 if args.quick else 3000
    import torch

    torch.set_flush_denormal(True)
    corpus = build_corpus("demo", progress=False)
    texts = corpus.read(["text"]).column(0).to_pylist()
    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.choice(len(texts), size=n, replace=False)]
    auto = resolve_precision("auto")
    print(
        f"{n} demo documents (mean {np.mean([len(t) for t in sample]):.0f} chars), "
        f"{torch.get_num_threads()} torch threads, AMX: {torch.cpu._is_amx_tile_supported()}, "
        f"AVX512-BF16: {torch.cpu._is_avx512_bf16_supported()}, auto precision: {auto}"
    )
    rates, ref = {}, None
    for precision in ("fp32", "bf16", "fp16"):
        rates[precision], e = rate(sample, 128, precision)
        ref = e if ref is None else ref
        cos = (ref * e).sum(1)
        print(
            f"{precision}  128 tokens: {rates[precision]:7.1f} docs/s   cosine to fp32: "
            f"min {cos.min():.5f}, mean {cos.mean():.5f}",
            flush=True,
        )
    if not args.quick:
        r256, _ = rate(sample, 256, "fp32")
        print(f"fp32  256 tokens: {r256:7.1f} docs/s")
    print(f"embed_docs_per_s: {rates[auto]:.1f}")


if __name__ == "__main__":
    main()

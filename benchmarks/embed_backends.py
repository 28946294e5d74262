"""Embedding backends side by side: docs/s, cosine to torch fp32, and whether the clusters change.

For each backend (torch fp32, torch bf16 autocast, ONNX Runtime fp32, ONNX Runtime int8 weights),
all-MiniLM-L6-v2 at 128 tokens embeds the same seeded sample of demo documents (and torch at 64
tokens: half the work per document instead of lower precision); then spherical
k-means (domix's, seed 0) clusters each backend's vectors, and the assignment is compared with the
torch fp32 one by NMI. The NMI of torch fp32 against itself with another k-means seed is printed
too: the agreement two runs on the *same* vectors reach, the floor a backend is judged against.

    python benchmarks/embed_backends.py                  # 4,096 documents, k = 5 and 10 (~5 minutes)
    python benchmarks/embed_backends.py --docs 21451     # the whole demo corpus
    python benchmarks/embed_backends.py --quick          # 512 documents, k = 5
    python benchmarks/embed_backends.py --docs 21451 --backends "torch bf16,onnx int8"  # torch fp32 always runs

Last line: ``embed_backend_nmi: <lowest NMI of a backend to torch fp32>``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from domix import io  # noqa: E402
from domix.corpus.builtin import open_corpus  # noqa: E402
from domix.regroup import EmbedConfig  # noqa: E402
from domix.regroup.cluster import KMeansConfig, assign  # noqa: E402
from domix.regroup.report import nmi  # noqa: E402

BACKENDS = {
    "torch fp32": {"precision": "fp32"},
    "torch bf16": {"precision": "bf16"},
    "onnx fp32": {"name": "onnx"},
    "onnx int8": {"name": "onnx", "quantize": "int8"},
    "torch fp32, 64 tokens": {"precision": "fp32", "max_tokens": 64},  # less work instead of lower precision
    "torch bf16, 64 tokens": {"precision": "bf16", "max_tokens": 64},
}


def clusters(x_ND: np.ndarray, k: int, seed: int) -> np.ndarray:
    fit = KMeansConfig(n_init=3).fit(x_ND, k, seed)
    return assign(x_ND, fit.centroids_KD, True)[0]


def agreement(a: np.ndarray, b: np.ndarray, k: int) -> float:
    counts = np.zeros((k, k))
    np.add.at(counts, (a, b), 1)
    return nmi(counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--docs", type=int, default=None)
    ap.add_argument("--ks", default=None, help="comma-separated k values")
    ap.add_argument("--backends", default=None, help=f"comma-separated, of: {', '.join(BACKENDS)} (default: all)")
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    n = args.docs or (512 if args.quick else 4096)
    ks = [int(k) for k in (args.ks or ("5" if args.quick else "5,10")).split(",")]
    texts = open_corpus("demo", None, False).read(["text"]).column(0).to_pylist()
    sample = [texts[i] for i in np.random.default_rng(0).choice(len(texts), min(n, len(texts)), replace=False)]
    print(f"{len(sample):,} demo documents, 128 tokens, {torch.get_num_threads()} threads, {os.cpu_count()} "
          f"CPUs, flags: {' '.join(io.speed_flags()) or 'none of amx/avx512_bf16/vnni'}", flush=True)
    chosen = ["torch fp32"] + [b for b in (args.backends.split(",") if args.backends else BACKENDS) if b != "torch fp32"]
    if unknown := [b for b in chosen if b not in BACKENDS]:
        ap.error(f"unknown backends {unknown}; choose from {list(BACKENDS)}")
    vecs, labels = {}, {}
    for name in chosen:
        settings = BACKENDS[name]
        emb = EmbedConfig(**{"max_tokens": 128, **settings}).build()
        emb.embed(sample[:64])  # warm-up (and the one-time export for onnx)
        t0 = time.perf_counter()
        vecs[name] = np.concatenate([emb.embed(sample[i : i + 1024]) for i in range(0, len(sample), 1024)])
        rate = len(sample) / (time.perf_counter() - t0)
        cos = (vecs[name] * vecs["torch fp32"]).sum(1)
        labels[name] = {k: clusters(vecs[name], k, 0) for k in ks}
        agree = ", ".join(f"k={k} NMI {agreement(labels[name][k], labels['torch fp32'][k], k):.3f}" for k in ks)
        print(f"{name:<21} {rate:7.1f} docs/s   cosine to torch fp32 min {cos.min():.5f} mean {cos.mean():.5f}"
              f"   clusters vs torch fp32: {agree}", flush=True)
    floor = ", ".join(f"k={k} NMI {agreement(clusters(vecs['torch fp32'], k, 1), labels['torch fp32'][k], k):.3f}"
                      for k in ks)
    print(f"torch fp32 with k-means seed 1 vs seed 0 (same vectors): {floor}")
    worst = min(agreement(labels[b][k], labels["torch fp32"][k], k) for b in chosen for k in ks)
    print(f"embed_backend_nmi: {worst:.3f}")


if __name__ == "__main__":
    main()

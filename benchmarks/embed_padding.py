"""How much padding the embedder computes: padded / real tokens per batch, unsorted, sorted by
characters (what sentence-transformers' ``encode`` does within each call) and sorted by tokens.

The cache embeds ``chunk_rows`` (1,024) documents per call in batches of 64; a batch costs its size
times its longest document (after truncation). Length bucketing can save at most the padding.

    python benchmarks/embed_padding.py            # demo and extended corpora, 128 and 256 tokens, 4,096 documents
    python benchmarks/embed_padding.py --quick    # demo, 128 tokens, 1,024 documents

Last line: ``padding_unsorted: <padded / real tokens of the first setting, unsorted>``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import AutoTokenizer  # noqa: E402

from domix.corpus.builtin import open_corpus  # noqa: E402
from domix.regroup.embed import default_model_path  # noqa: E402


def padding(lengths: np.ndarray, key: np.ndarray | None, chunk: int = 1024, batch: int = 64) -> float:
    cost = 0
    for s in range(0, len(lengths), chunk):
        idx = np.arange(s, min(s + chunk, len(lengths)))
        order = idx if key is None else idx[np.argsort(-key[idx], kind="stable")]
        cost += sum(len(b) * lengths[b].max() for b in np.array_split(order, -(-len(order) // batch)))
    return cost / lengths.sum()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    corpora, tokens, n = (["demo"], [128], 1024) if args.quick else (["demo", "extended"], [128, 256], 4096)
    tok = AutoTokenizer.from_pretrained(str(default_model_path()))
    tok.model_max_length = 10**9  # count whole documents; truncation is applied below
    first = None
    for name in corpora:
        texts = open_corpus(name, None, False).read(["text"]).column(0).to_pylist()
        pick = np.random.default_rng(0).choice(len(texts), size=min(n, len(texts)), replace=False)
        sample = [texts[i] for i in pick]
        full = np.array([len(ids) for ids in tok(sample)["input_ids"]])
        chars = np.array([len(t) for t in sample], dtype=np.float64)
        for T in tokens:
            L = np.minimum(full, T)
            row = {"unsorted": padding(L, None), "chars": padding(L, chars), "tokens": padding(L, L.astype(float))}
            first = first or row["unsorted"]
            print(f"{name} ({len(texts):,} docs), {T} tokens, {len(sample):,} sampled: {np.mean(full >= T):.1%} "
                  f"truncated; padded / real tokens: unsorted {row['unsorted']:.3f}, sorted by characters "
                  f"{row['chars']:.3f}, sorted by tokens {row['tokens']:.3f}", flush=True)
    print(f"padding_unsorted: {first:.3f}")


if __name__ == "__main__":
    main()

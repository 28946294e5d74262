"""Per-domain packed token streams: every training sequence comes from exactly one domain.

For a split and a domain set, the documents of each domain are put in a seeded random order and
concatenated with an EOS token after each document. Domain d occupies ``tokens[bounds[d]:bounds[d+1]]``
and its sequence j is the window ``[bounds[d] + j*L, bounds[d] + j*L + L + 1)`` (inputs and
shifted targets), so sequences are fixed-length, cheap to gather and never mix domains. A domain
with fewer than L + 1 tokens is tiled (repeated) to fill one sequence; this is recorded in the meta.

Packed streams are cached in ``<cache>/packed/<key>/`` keyed by token store, domain set, split,
context length, seed and cap, and memory-mapped when reopened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import io
from ..corpus.store import Corpus
from .domains import DomainSet
from .token_store import TokenStore


class PackedDomains:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta: dict[str, Any] = io.read_json(self.path / "meta.json")
        self.names: tuple[str, ...] = tuple(self.meta["names"])
        self.context_length: int = self.meta["context_length"]
        self.bounds = np.load(self.path / "bounds.npy")
        total = int(self.bounds[-1])
        self.tokens = (
            np.memmap(self.path / "tokens.bin", dtype=self.meta["dtype"], mode="r", shape=(total,))
            if total
            else np.zeros(0, dtype=self.meta["dtype"])
        )
        lengths = np.diff(self.bounds)
        self.num_sequences = np.where(lengths > 0, (lengths - 1) // self.context_length, 0).astype(
            np.int64
        )
        self.tokens_per_domain = np.asarray(self.meta["stream_tokens"], dtype=np.int64)
        self.split_tokens = np.asarray(self.meta["split_tokens"], dtype=np.int64)  # before any cap
        self.docs_per_domain = np.asarray(self.meta["docs"], dtype=np.int64)

    fingerprint = property(lambda self: self.meta["key"])

    def gather(self, domain_ids: np.ndarray, seq_ids: np.ndarray) -> np.ndarray:
        """Sequences as an int64 array [len(domain_ids), L + 1]."""
        starts = self.bounds[domain_ids] + np.asarray(seq_ids, dtype=np.int64) * self.context_length
        return self.tokens[starts[:, None] + np.arange(self.context_length + 1)].astype(np.int64)

    def targets(self, batch_BT: torch.Tensor, domain_ids: np.ndarray, seq_ids: np.ndarray
                ) -> tuple[torch.Tensor, None]:
        """The targets of ``gather``'s rows: every next token (no mask, unlike records')."""
        return batch_BT[:, 1:], None

    def sequences(self, domain: int) -> np.ndarray:
        """All sequences of one domain, [num_sequences[domain], L + 1] (for evaluation)."""
        n = int(self.num_sequences[domain])
        return self.gather(np.full(n, domain), np.arange(n))


def split_order(corpus: Corpus, domains: DomainSet, split: str, seed: int, salt: int) -> np.ndarray:
    """The corpus rows of ``split`` that have a domain, by domain and in a seeded order within."""
    in_split = np.asarray(corpus.read(["split"]).column(0).to_numpy(zero_copy_only=False) == split)
    sel = np.flatnonzero(in_split & (domains.labels >= 0))
    rng = np.random.default_rng([seed, salt])
    return sel[np.lexsort((rng.random(len(sel)), domains.labels[sel]))]


def pack(
    corpus: Corpus,
    store: TokenStore,
    domains: DomainSet,
    split: str,
    context_length: int,
    seed: int = 0,
    max_tokens_per_domain: int | None = None,
) -> PackedDomains:
    """Build (or reopen) the packed streams of ``split`` for ``domains``."""
    key = io.fingerprint(
        "packed-v2",
        store.fingerprint,
        domains.fingerprint,
        split,
        context_length,
        seed,
        max_tokens_per_domain,
    )
    out = io.cache_dir() / "packed" / key[:24]
    if (out / "meta.json").exists():
        return PackedDomains(out)
    out.mkdir(parents=True, exist_ok=True)
    L = context_length
    m = len(domains)
    labels = domains.labels
    order = split_order(corpus, domains, split, seed, 0x9ACC)
    lengths = store.doc_lengths()[order] + 1  # + EOS
    starts = np.searchsorted(labels[order], np.arange(m + 1))
    split_tokens = np.bincount(labels[order], weights=lengths, minlength=m).astype(np.int64)
    if max_tokens_per_domain is not None:  # keep whole docs until each domain has its cap
        keep = np.zeros(len(order), dtype=bool)
        for d in range(m):
            a, b = starts[d], starts[d + 1]
            need = np.searchsorted(np.cumsum(lengths[a:b]), max_tokens_per_domain + 1) + 1
            keep[a : a + need] = True
        order, lengths = order[keep], lengths[keep]
        starts = np.searchsorted(labels[order], np.arange(m + 1))
    stream = np.bincount(labels[order], weights=lengths, minlength=m).astype(np.int64)
    if max_tokens_per_domain is not None:  # trim to whole sequences within the cap
        cap = (max_tokens_per_domain // L) * L + 1
        padded = np.minimum(stream, cap)
    else:
        padded = stream.copy()
    tiled = (stream > 0) & (stream < L + 1)
    padded[tiled] = L + 1
    bounds = np.concatenate([[0], np.cumsum(padded)]).astype(np.int64)
    dtype = store.tokens.dtype
    with io.atomic_path(out / "tokens.bin") as tmp:
        buf = io.reserved_memmap(tmp, dtype, (max(int(bounds[-1]), 1),))
        for d in range(m):
            _write_domain(buf, bounds[d], bounds[d + 1], store, order[starts[d] : starts[d + 1]])
        buf.flush()
        del buf
    with io.atomic_path(out / "bounds.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, bounds)
    io.write_json(
        out / "meta.json",
        {
            "key": key,
            "names": list(domains.names),
            "split": split,
            "context_length": L,
            "seed": seed,
            "dtype": np.dtype(dtype).name,
            "domain_set": domains.spec,
            "max_tokens_per_domain": max_tokens_per_domain,
            "stream_tokens": stream.tolist(),
            "split_tokens": split_tokens.tolist(),
            "docs": np.diff(starts).tolist(),
            "tiled_domains": [domains.names[i] for i in np.flatnonzero(tiled)],
        },
    )
    return PackedDomains(out)


def _write_domain(buf: np.ndarray, lo: int, hi: int, store: TokenStore, docs: np.ndarray) -> None:
    """Write docs (each followed by EOS) into buf[lo:hi], stopping at hi or repeating to fill it."""
    if hi <= lo:
        return
    pos = lo
    while pos < hi:
        for i in docs:
            toks = store.doc(int(i))
            n = min(len(toks), hi - pos)
            buf[pos : pos + n] = toks[:n]
            pos += n
            if pos >= hi:
                return
            buf[pos] = store.eos_id
            pos += 1
            if pos >= hi:
                return

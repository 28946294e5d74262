"""Prompt/response records as training sequences: one record a sequence, the loss on its response.

Each record of a prompt/response corpus (``corpus.records``; its tokens in the token store are the
rendered prompt's, then the response's) becomes one row of L + 1 tokens::

    [ prompt (cut from the left if needed) | response | EOS | EOS padding ... ]

The targets are the row shifted by one, as for packed streams; only the response's tokens and its
closing EOS are targets (``targets`` gives the others ``IGNORE``, which the loss skips, and a mask
of the targets kept, which every per-token mean divides by). A record longer than the row is cut:
the prompt from the left (the end of the prompt, next to the response, is kept) down to one token,
then the response from the right; both are counted in the meta (``truncated_prompts``,
``truncated_responses``), which the run's summary reports. Padding sits after the response, so a
causal model's logits on the kept tokens do not see it.

``RecordDomains`` has ``PackedDomains``' interface (names, ``num_sequences``, ``gather``, token
counts), so the sampler, the loop and the evaluator use it unchanged; a "sequence" is a record, and
a domain's ``tokens_per_domain`` counts its response tokens (what training sees of it). Cached in
``<cache>/packed/<key>/`` like packed streams.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import io
from ..corpus.store import Corpus
from .domains import DomainSet
from .packed import split_order
from .token_store import TokenStore

IGNORE = -100  # a target the loss skips (torch's cross-entropy ignore_index)


class RecordDomains:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta: dict[str, Any] = io.read_json(self.path / "meta.json")
        self.names: tuple[str, ...] = tuple(self.meta["names"])
        self.context_length: int = self.meta["context_length"]
        self.bounds = np.load(self.path / "bounds.npy")  # records of domain d: rows bounds[d]:bounds[d+1]
        self.spans = np.load(self.path / "spans.npy")  # [rows, 2]: the targets kept, [lo, hi)
        self.docs = np.load(self.path / "docs.npy")  # [rows]: each row's record (corpus row)
        n = int(self.bounds[-1])
        shape = (n, self.context_length + 1)
        self.rows = (np.memmap(self.path / "tokens.bin", dtype=self.meta["dtype"], mode="r", shape=shape)
                     if n else np.zeros(shape, dtype=self.meta["dtype"]))
        self.num_sequences = np.diff(self.bounds).astype(np.int64)
        self.tokens_per_domain = np.asarray(self.meta["response_tokens"], dtype=np.int64)
        self.split_tokens = np.asarray(self.meta["split_tokens"], dtype=np.int64)  # before any cap
        self.docs_per_domain = self.num_sequences

    fingerprint = property(lambda self: self.meta["key"])

    def _index(self, domain_ids: np.ndarray, seq_ids: np.ndarray) -> np.ndarray:
        return self.bounds[domain_ids] + np.asarray(seq_ids, dtype=np.int64)

    def gather(self, domain_ids: np.ndarray, seq_ids: np.ndarray) -> np.ndarray:
        """Records as an int64 array [len(domain_ids), L + 1]."""
        return self.rows[self._index(domain_ids, seq_ids)].astype(np.int64)

    def sequences(self, domain: int) -> np.ndarray:
        n = int(self.num_sequences[domain])
        return self.gather(np.full(n, domain), np.arange(n))

    def targets(self, batch_BT: torch.Tensor, domain_ids: np.ndarray, seq_ids: np.ndarray
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """The targets of ``gather``'s rows, ``IGNORE`` outside the responses, and the mask [B, L]."""
        lo, hi = torch.from_numpy(self.spans[self._index(domain_ids, seq_ids)].astype(np.int64)).unbind(1)
        t = torch.arange(self.context_length)
        keep = (t >= lo[:, None]) & (t < hi[:, None])
        return batch_BT[:, 1:].masked_fill(~keep, IGNORE), keep


def pack_records(
    corpus: Corpus,
    store: TokenStore,
    domains: DomainSet,
    split: str,
    context_length: int,
    seed: int = 0,
    max_tokens_per_domain: int | None = None,
) -> RecordDomains:
    """Build (or reopen) the rows of ``split``'s records for ``domains``; ``max_tokens_per_domain``
    keeps whole records, in a seeded order, until a domain has that many response tokens."""
    if store.prompt_lengths is None:
        raise ValueError(f"{store.path}: not the token store of a prompt/response corpus")
    key = io.fingerprint("records-v1", store.fingerprint, domains.fingerprint, split, context_length, seed,
                         max_tokens_per_domain)
    out = io.cache_dir() / "packed" / key[:24]
    if (out / "meta.json").exists():
        return RecordDomains(out)
    L, m = context_length, len(domains)
    labels = domains.labels
    order = split_order(corpus, domains, split, seed, 0x5EC0)
    prompt = store.prompt_lengths[order]
    response = store.doc_lengths()[order] - prompt + 1  # + EOS
    split_tokens = np.bincount(labels[order], weights=response, minlength=m).astype(np.int64)
    if max_tokens_per_domain is not None:
        seen = np.zeros(m, dtype=np.int64)
        keep = np.zeros(len(order), dtype=bool)
        for i, d in enumerate(labels[order]):  # whole records until the domain reaches its cap
            keep[i] = seen[d] < max_tokens_per_domain
            seen[d] += keep[i] * min(response[i], L)
        order, prompt, response = order[keep], prompt[keep], response[keep]
    kept_response = np.minimum(response, L)
    kept_prompt = np.minimum(prompt, L + 1 - kept_response)
    spans = np.stack([kept_prompt - 1, kept_prompt - 1 + kept_response], axis=1).astype(np.int32)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels[order], minlength=m))]).astype(np.int64)
    out.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(out / "tokens.bin") as tmp:
        rows = io.reserved_memmap(tmp, store.tokens.dtype, (max(len(order), 1), L + 1))
        rows[:] = store.eos_id
        for r, (doc, p, kp, kr) in enumerate(zip(order, prompt, kept_prompt, kept_response)):
            toks = store.doc(int(doc))
            rows[r, :kp] = toks[p - kp : p]  # the prompt's last kp tokens
            answer = toks[p : p + kr]  # the response, or its first L tokens (then without EOS)
            rows[r, kp : kp + len(answer)] = answer  # its EOS is the padding's first
        rows.flush()
        del rows
    for name, arr in (("spans.npy", spans), ("docs.npy", order.astype(np.int64)), ("bounds.npy", bounds)):
        with io.atomic_path(out / name) as tmp, open(tmp, "wb") as f:
            np.save(f, arr)
    io.write_json(out / "meta.json", {
        "key": key,
        "kind": "records",
        "names": list(domains.names),
        "split": split,
        "context_length": L,
        "seed": seed,
        "dtype": np.dtype(store.tokens.dtype).name,
        "domain_set": domains.spec,
        "template": store.meta.get("template"),
        "max_tokens_per_domain": max_tokens_per_domain,
        "response_tokens": np.bincount(labels[order], weights=kept_response, minlength=m).astype(np.int64).tolist(),
        "split_tokens": split_tokens.tolist(),
        "records": int(len(order)),
        "truncated_prompts": int((kept_prompt < prompt).sum()),
        "truncated_responses": int((kept_response < response).sum()),
    })
    return RecordDomains(out)

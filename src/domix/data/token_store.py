"""Tokenized documents in one memory-mapped flat array, built once per (corpus, tokenizer).

    <cache>/tokens/<corpus fp>-<tokenizer fp>/
        tokens.bin     uint16 (vocab <= 65,536) or uint32 tokens of every document, in corpus order
        offsets.npy    int64 [num_docs + 1]: document i is tokens[offsets[i]:offsets[i+1]]
        meta.json      fingerprints, dtype, counts (written last: its presence means complete)

Documents are stored without separators; packing adds the EOS token between documents.

A prompt/response corpus (``corpus.records``) stores each record as its rendered prompt's tokens
followed by its response's tokens (tokenized apart, so the boundary is a token boundary), plus
``prompt_lengths.npy`` [num_docs]; the template is part of the folder's key.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .. import io
from ..corpus.document import CorpusError
from ..corpus.store import Corpus
from ..tokenizer import INSTRUCTION_TEMPLATE, Tokenizer


class TokenStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta: dict[str, Any] = io.read_json(self.path / "meta.json")
        self.tokens = (
            np.memmap(
                self.path / "tokens.bin",
                dtype=self.meta["dtype"],
                mode="r",
                shape=(self.meta["num_tokens"],),
            )
            if self.meta["num_tokens"]
            else np.zeros(0, self.meta["dtype"])
        )
        self.offsets = np.load(self.path / "offsets.npy", mmap_mode="r")
        prompts = self.path / "prompt_lengths.npy"
        self.prompt_lengths = np.load(prompts) if prompts.exists() else None  # records only

    corpus_fingerprint = property(lambda self: self.meta["corpus_fingerprint"])
    tokenizer_fingerprint = property(lambda self: self.meta["tokenizer_fingerprint"])
    eos_id = property(lambda self: self.meta["eos_id"])
    vocab_size = property(lambda self: self.meta["vocab_size"])
    num_docs = property(lambda self: len(self.offsets) - 1)

    @property
    def fingerprint(self) -> str:
        if self.meta.get("template") is not None:
            return io.fingerprint(self.corpus_fingerprint, self.tokenizer_fingerprint, self.meta["template"])
        return io.fingerprint(self.corpus_fingerprint, self.tokenizer_fingerprint)

    def doc_lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def doc(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    @staticmethod
    def location(corpus: Corpus, tokenizer: Tokenizer, template: str = INSTRUCTION_TEMPLATE) -> Path:
        name = f"{corpus.fingerprint[:16]}-{tokenizer.fingerprint[:16]}"
        return io.cache_dir() / "tokens" / (f"{name}-{io.fingerprint(template)[:8]}" if corpus.records else name)

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        tokenizer: Tokenizer,
        progress: bool = True,
        batch_docs: int = 2048,
        template: str = INSTRUCTION_TEMPLATE,
    ) -> TokenStore:
        """Open the store for (corpus, tokenizer), tokenizing the corpus first if needed.
        ``template``: prompt/response corpora only, how a prompt is written (``Tokenizer.render_prompt``)."""
        if corpus.records:
            tokenizer.render_prompt(template, "")  # a template that cannot be used fails before any work
        out = cls.location(corpus, tokenizer, template)
        if (out / "meta.json").exists():
            store = cls(out)
            if store.corpus_fingerprint != corpus.fingerprint:
                raise CorpusError(
                    f"{out}: token store of another corpus; delete the folder to rebuild it"
                )
            return store
        out.mkdir(parents=True, exist_ok=True)
        dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.uint32
        offsets = [0]
        per_domain: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        bar = tqdm(
            total=corpus.num_docs,
            desc="tokenize",
            unit="doc",
            disable=not progress,
            mininterval=1.0,
        )
        columns = ["text", "domain", "subdomain"] + (["prompt"] if corpus.records else [])
        prompt_lengths: list[int] = []
        with io.atomic_path(out / "tokens.bin") as tmp, open(tmp, "wb") as f:
            for batch in corpus.iter_batches(columns=columns, batch_size=batch_docs):
                texts, domains, subs = (batch.column(i).to_pylist() for i in range(3))
                encoded = tokenizer.encode_batch(texts)
                if corpus.records:
                    prompts = tokenizer.encode_batch([tokenizer.render_prompt(template, p) for p in batch.column(3).to_pylist()])
                    prompt_lengths += [len(p) for p in prompts]
                    encoded = [p + r for p, r in zip(prompts, encoded)]
                for ids, dom, sub in zip(encoded, domains, subs):
                    arr = np.asarray(ids, dtype=dtype)
                    f.write(arr.tobytes())
                    offsets.append(offsets[-1] + len(arr))
                    per_domain[dom][sub or "-"] += len(arr)
                bar.update(len(texts))
        bar.close()
        with io.atomic_path(out / "offsets.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, np.asarray(offsets, dtype=np.int64))
        if corpus.records:
            with io.atomic_path(out / "prompt_lengths.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, np.asarray(prompt_lengths, dtype=np.int64))
        io.write_json(
            out / "meta.json",
            {
                "corpus_fingerprint": corpus.fingerprint,
                "tokenizer_fingerprint": tokenizer.fingerprint,
                "tokenizer_source": tokenizer.source,
                "eos_id": tokenizer.eos_id,
                "vocab_size": tokenizer.vocab_size,
                "dtype": np.dtype(dtype).name,
                "num_docs": len(offsets) - 1,
                "num_tokens": offsets[-1],
                "template": template if corpus.records else None,
            },
        )
        tokens = corpus.manifest.get("tokens", {})
        tokens[tokenizer.fingerprint[:16]] = {
            "tokenizer": tokenizer.source,
            "total": offsets[-1],
            "domains": {
                d: {"tokens": sum(s.values()), "subdomains": dict(s)}
                for d, s in sorted(per_domain.items())
            },
        }
        corpus.add_to_manifest(tokens=tokens)
        return cls(out)

"""On-disk embedding cache: float16 rows in corpus order, filled in chunks, resumable.

    <cache>/embeddings/<corpus fp[:16]>-<embedder fp[:16]>/
        embeddings.f16   float16 [num_docs, dim], row i = corpus row i (memory-mappable)
        progress.json    corpus and embedder fingerprints, shape, rows done, complete

Rows are embedded in order, ``chunk_rows`` at a time. After each chunk the file is flushed and
``progress.json`` rewritten atomically, so a killed run loses at most one chunk and the next run
starts at the first row not yet recorded. The embedder fingerprint covers the model weights,
the truncation length and the precision. A cache recording another corpus (or embedder) is refused.

Reads for the streaming passes go through plain file reads, not a memory map, so resident memory
does not grow with the corpus (``array()`` gives a read-only memmap for random access).

    cache = EmbeddingCache.for_corpus(corpus, embedder)
    cache.fill(corpus, embedder, chunk_rows=1024)   # resumes if interrupted
    emb_BD = cache.read_rows(0, 4096)               # float32
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .. import faults, io
from ..corpus.document import CorpusError
from ..corpus.store import Corpus
from .embed import Embedder, check_texts

ProgressCallback = Callable[[int, int], None]  # (rows done, total rows), after each commit


class EmbeddingCache:
    def __init__(self, path: str | Path, corpus: Corpus, embedder: Embedder) -> None:
        self.path = Path(path)
        self.num_rows, self.dim = int(corpus.num_docs), int(embedder.dim)
        self.file = self.path / "embeddings.f16"
        self.progress_file = self.path / "progress.json"
        expected = {
            "corpus_fingerprint": corpus.fingerprint,
            "embedder_fingerprint": embedder.fingerprint,
            "num_rows": self.num_rows,
            "dim": self.dim,
        }
        if self.progress_file.exists():
            state = io.read_json(self.progress_file)
            if state.get("corpus_fingerprint") != corpus.fingerprint:
                raise CorpusError(
                    f"{self.path}: embedding cache of another corpus (fingerprint "
                    f"{state.get('corpus_fingerprint')}, this corpus is {corpus.fingerprint} "
                    f"'{corpus.name}'); delete the folder or choose another embed_cache"
                )
            for key in ("embedder_fingerprint", "num_rows", "dim"):
                if state.get(key) != expected[key]:
                    raise CorpusError(
                        f"{self.path}: embedding cache made with a different {key} "
                        f"({state.get(key)} != {expected[key]}); delete the folder to rebuild it"
                    )
            self.state: dict[str, Any] = state
        else:
            self.state = {**expected, "done_rows": 0, "complete": False}

    @classmethod
    def location(cls, corpus: Corpus, embedder: Embedder) -> Path:
        return (
            io.cache_dir() / "embeddings" / f"{corpus.fingerprint[:16]}-{embedder.fingerprint[:16]}"
        )

    @classmethod
    def for_corpus(
        cls, corpus: Corpus, embedder: Embedder, path: str | Path | None = None
    ) -> EmbeddingCache:
        return cls(path or cls.location(corpus, embedder), corpus, embedder)

    done_rows = property(lambda self: int(self.state["done_rows"]))
    complete = property(lambda self: bool(self.state["complete"]))

    def fill(
        self,
        corpus: Corpus,
        embedder: Embedder,
        chunk_rows: int = 1024,
        progress: bool = True,
        on_commit: ProgressCallback | None = None,
    ) -> EmbeddingCache:
        """Embed every row not yet done, committing after each chunk. Returns self."""
        if self.complete:
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        if not self.file.exists():
            with open(self.file, "wb") as f:
                f.truncate(self.num_rows * self.dim * 2)
        bar = tqdm(
            total=self.num_rows,
            initial=self.done_rows,
            desc="embed",
            unit="doc",
            disable=not progress,
            mininterval=1.0,
        )
        if self.done_rows and progress:
            print(f"embedding cache {self.path}: resuming at row {self.done_rows:,} of {self.num_rows:,}",
                  flush=True)
        with open(self.file, "r+b") as f:
            columns = ["id", "text"] + (["prompt"] if corpus.records else [])
            for batch in corpus.iter_batches(columns, chunk_rows, start_row=self.done_rows):
                texts = batch.column(1).to_pylist()
                if corpus.records:  # a prompt/response record is embedded whole: prompt, then response
                    texts = [f"{p}\n\n{t}" for p, t in zip(batch.column(2).to_pylist(), texts)]
                check_texts(texts, batch.column(0).to_pylist())
                emb_BD = embedder.embed(texts).astype(np.float16)
                if emb_BD.shape != (len(texts), self.dim):
                    raise RuntimeError(f"embedder returned {emb_BD.shape}, expected {self.dim}-d")
                f.seek(self.done_rows * self.dim * 2)
                f.write(np.ascontiguousarray(emb_BD).tobytes())
                f.flush()
                faults.point("embed_chunk_written")
                self.state["done_rows"] = self.done_rows + len(texts)
                io.write_json(self.progress_file, self.state)
                faults.point("embed_chunk_committed")
                bar.update(len(texts))
                if on_commit is not None:
                    on_commit(self.done_rows, self.num_rows)
        bar.close()
        if self.done_rows != self.num_rows:
            raise CorpusError(
                f"{corpus.path}: read {self.done_rows} rows, expected {self.num_rows}"
            )
        self.state["complete"] = True
        io.write_json(self.progress_file, self.state)
        return self

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) as float32 [stop - start, dim] (plain read, no memory map)."""
        return self._read_f16(start, stop).astype(np.float32)

    def _read_f16(self, start: int, stop: int) -> np.ndarray:
        self._require_complete()
        stop = min(stop, self.num_rows)
        with open(self.file, "rb") as f:
            f.seek(start * self.dim * 2)
            raw = np.fromfile(f, dtype=np.float16, count=(stop - start) * self.dim)
        return raw.reshape(stop - start, self.dim)

    def iter_chunks(self, chunk_rows: int = 65536) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, self.num_rows, chunk_rows):
            yield start, self.read_rows(start, start + chunk_rows)

    def gather(self, rows: np.ndarray, chunk_rows: int = 65536) -> np.ndarray:
        """Rows at sorted indices ``rows`` as float32 [len(rows), dim], in one streaming pass."""
        rows = np.asarray(rows, dtype=np.int64)
        out_SD = np.empty((len(rows), self.dim), dtype=np.float32)
        for start in range(0, self.num_rows, chunk_rows):
            raw_BD = self._read_f16(start, start + chunk_rows)
            lo, hi = np.searchsorted(rows, [start, start + len(raw_BD)])
            out_SD[lo:hi] = raw_BD[rows[lo:hi] - start]
        return out_SD

    def array(self) -> np.memmap:
        """The whole cache as a read-only float16 memmap [num_rows, dim]."""
        self._require_complete()
        return np.memmap(self.file, dtype=np.float16, mode="r", shape=(self.num_rows, self.dim))

    def _require_complete(self) -> None:
        if not self.complete:
            raise RuntimeError(f"{self.path}: embeddings incomplete; call fill() first")

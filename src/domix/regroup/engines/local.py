"""The ``local`` engine: the corpus streamed in chunks through the on-disk embedding cache."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ...corpus.store import Corpus
from ..cache import EmbeddingCache
from ..cluster import assign
from ..config import RegroupConfig
from ..engine import ENGINES, Assignment, fit_rate, in_fit_sample, split_codes


@ENGINES.register("local")
class LocalEngine:
    """Streams the corpus through the on-disk embedding cache; nothing corpus-sized in memory
    except the assignment table (a few bytes per document)."""

    def __init__(self, corpus: Corpus, cfg: RegroupConfig, progress: bool = True) -> None:
        embedder = cfg.embed.build()
        self.corpus, self.cfg = corpus, cfg
        self.cache = EmbeddingCache.for_corpus(corpus, embedder, cfg.embed_cache)
        self.cache.fill(corpus, embedder, cfg.embed.chunk_rows, progress)
        self.embedder_fingerprint, self.dim = embedder.fingerprint, embedder.dim
        self.chunk = 16384  # rows per pass step: bounds the float32 temporaries (25 MB)

    def _meta_batches(self):
        yield from self.corpus.iter_batches(["id", "split"], self.chunk)

    def fit_sample(self) -> tuple[np.ndarray, np.ndarray]:
        rate = fit_rate(self.corpus, self.cfg.cluster.fit_sample)
        rows, start = [], 0
        for batch in self._meta_batches():
            ids, codes = batch.column(0).to_pylist(), split_codes(batch.column(1).to_pylist())
            rows.append(start + np.flatnonzero(in_fit_sample(ids, codes, rate, self.cfg.seed)))
            start += batch.num_rows
        rows_S = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        return rows_S, self.cache.gather(rows_S, self.chunk)

    def assign(self, centroids_KD: np.ndarray) -> Assignment:
        ids, codes, clusters, dists = [], [], [], []
        for batch, (_, emb_BD) in zip(self._meta_batches(), self.cache.iter_chunks(self.chunk)):
            lab, dist = assign(emb_BD, centroids_KD, self.cfg.cluster.spherical)
            ids.append(batch.column(0))
            codes.append(split_codes(batch.column(1).to_pylist()))
            clusters.append(lab)
            dists.append(dist)
        return Assignment(
            pa.chunked_array(ids, pa.string()).combine_chunks(),
            np.concatenate(codes),
            np.concatenate(clusters),
            np.concatenate(dists),
        )

    def close(self) -> None:
        pass

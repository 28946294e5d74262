"""Engines run the two corpus-sized passes of Regroup: embed every document, assign every document.

Everything between the passes (k-means on a sample, choosing k, the report) works on the fit
sample and the assignment table, and is shared. An engine gives:

- ``fit_sample()``: the embeddings of the training documents picked for fitting k-means. The pick
  is a seeded hash of the document id (``in_fit_sample``), so every engine, on any number of
  machines, picks the same documents without coordination;
- ``assign(centroids_KD)``: every document's nearest centroid and distance, in corpus row order.

``local`` streams the corpus Parquet in chunks through the embedding cache (resumable, constant
memory in the corpus size); ``ray`` (``ray_engine.py``) runs the same steps as Ray Data
``map_batches`` over Parquet blocks.

    domix regroup run demo --k 8 --engine local
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa

from ..corpus.split import SPLITS, id_unit
from ..corpus.store import Corpus
from ..registry import Registry
from .cache import EmbeddingCache
from .cluster import assign

if TYPE_CHECKING:
    from . import RegroupConfig

SPLIT_CODE = {s: i for i, s in enumerate(SPLITS)}  # train 0, validation 1, test 2


@dataclass
class Assignment:
    """One row per corpus document, in corpus order."""

    ids: pa.Array  # string
    split_N: np.ndarray  # int8 code into SPLITS
    cluster_N: np.ndarray  # int32
    distance_N: np.ndarray  # float32: 1 - cosine (spherical) or Euclidean distance

    def __len__(self) -> int:
        return len(self.cluster_N)

    def to_table(self) -> pa.Table:
        return pa.table(
            {
                "id": self.ids,
                "row": pa.array(np.arange(len(self), dtype=np.int64)),
                "split": pa.DictionaryArray.from_arrays(
                    pa.array(self.split_N, pa.int8()), pa.array(list(SPLITS))
                ),
                "cluster": pa.array(self.cluster_N, pa.int32()),
                "distance": pa.array(self.distance_N, pa.float32()),
            }
        )


class Engine(Protocol):
    embedder_fingerprint: str
    dim: int

    def fit_sample(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows_S int64 sorted, emb_SD float32) of the training documents picked for fitting."""
        ...

    def assign(self, centroids_KD: np.ndarray) -> Assignment: ...

    def close(self) -> None: ...


ENGINES: Registry[type] = Registry("regroup engine")


def build_engine(corpus: Corpus, cfg: RegroupConfig, progress: bool = True) -> Engine:
    from . import ray_engine  # noqa: F401  (registers "ray"; ray itself is imported on use)

    return ENGINES.get(cfg.engine)(corpus, cfg, progress)


def fit_rate(corpus: Corpus, fit_sample: int) -> float:
    n_train = int(corpus.manifest["docs_per_split"]["train"])
    return min(1.0, fit_sample / max(n_train, 1))


def in_fit_sample(ids: list[str], split_codes: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Boolean mask: training documents whose seeded id hash falls under ``rate``."""
    train = split_codes == SPLIT_CODE["train"]
    if rate >= 1.0:
        return train
    salt = f"regroup-fit-{seed}"
    u = np.fromiter((id_unit(i, salt) for i in ids), dtype=np.float64, count=len(ids))
    return train & (u < rate)


def split_codes(splits: list[str]) -> np.ndarray:
    return np.array([SPLIT_CODE[s] for s in splits], dtype=np.int8)


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

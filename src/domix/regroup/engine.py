"""Engines run the two corpus-sized passes of Regroup: embed every document, assign every document.

Everything between the passes (k-means on a sample, choosing k, the report) works on the fit
sample and the assignment table, and is shared. An engine gives:

- ``fit_sample()``: the embeddings of the training documents picked for fitting k-means. The pick
  is a seeded hash of the document id (``in_fit_sample``), so every engine, on any number of
  machines, picks the same documents without coordination;
- ``assign(centroids_KD)``: every document's nearest centroid and distance, in corpus row order.

An engine is one file in ``engines/`` with ``@ENGINES.register(name)``: ``local`` streams the corpus
Parquet in chunks through the embedding cache (resumable, constant memory in the corpus size);
``ray`` (``ray_data.py``) runs the same steps as Ray Data ``map_batches`` over Parquet blocks.

    domix regroup run demo --k 8 --engine local
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa

from ..corpus.split import SPLITS, id_unit
from ..corpus.store import Corpus
from ..registry import Registry
from .config import RegroupConfig

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


ENGINES: Registry[type] = Registry("regroup engine", package="domix.regroup.engines")


def build_engine(corpus: Corpus, cfg: RegroupConfig, progress: bool = True) -> Engine:
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

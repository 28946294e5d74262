"""The Ray Data engine: embedding and assignment as ``map_batches`` over the corpus Parquet.

The same steps as the local engine, for corpora larger than one machine:

1. ``ray.data.read_parquet`` over the corpus Parquet (Ray splits it into blocks by row group);
2. ``map_batches`` with a callable class, so each actor loads the embedder once; embeddings stay
   in Ray's object store (spilled to disk when large) as float16, like the local cache;
3. the fit sample (training documents picked by a seeded id hash, see ``engine.in_fit_sample``)
   is pulled to the driver, where k-means runs;
4. ``map_batches`` with the centroids assigns every document; the driver gathers the small
   assignment table and orders it by corpus row through the document ids.

Ray is started locally (``ray.init``) unless ``ray.address`` names a cluster. Nothing is written
to the embedding cache: an interrupted Ray run starts over (the local engine resumes).

    domix regroup run demo --k 8 --engine ray --ray-workers 2
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...corpus.store import Corpus
from ..cluster import assign
from ..config import RegroupConfig
from ..embed import EmbedConfig, check_texts
from ..engine import ENGINES, Assignment, fit_rate, in_fit_sample, split_codes


class EmbedBatch:
    """Ray actor: builds the embedder once, then embeds batches (id, text, split) -> (id, split, emb)."""

    def __init__(self, embed: dict[str, Any]) -> None:
        self.embedder = EmbedConfig.from_dict(embed).build()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = batch["text"].tolist()
        if "prompt" in batch:  # a prompt/response record is embedded whole, as by the local engine
            texts = [f"{p}\n\n{t}" for p, t in zip(batch["prompt"].tolist(), texts)]
        check_texts(texts, batch["id"].tolist())
        emb_BD = self.embedder.embed(texts).astype(np.float16)
        return {"id": batch["id"], "split": batch["split"], "emb": emb_BD}


def _pick_fit(batch: dict[str, np.ndarray], rate: float, seed: int) -> dict[str, np.ndarray]:
    mask = in_fit_sample(batch["id"].tolist(), split_codes(batch["split"].tolist()), rate, seed)
    return {"id": batch["id"][mask], "emb": batch["emb"][mask]}


def _assign(batch: dict[str, np.ndarray], centroids_KD: np.ndarray, spherical: bool):
    lab, dist = assign(batch["emb"].astype(np.float32), centroids_KD, spherical)
    return {"id": batch["id"], "split": batch["split"], "cluster": lab, "distance": dist}


@ENGINES.register("ray")
class RayEngine:
    def __init__(self, corpus: Corpus, cfg: RegroupConfig, progress: bool = True) -> None:
        try:
            import ray
            import ray.data
        except ImportError as e:
            raise ImportError("the ray engine needs Ray Data: pip install 'domix[ray]'") from e
        self.corpus, self.cfg, self._ray = corpus, cfg, ray
        rc = cfg.ray
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(
                address=rc.address,
                num_cpus=rc.num_cpus if rc.address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        ray.data.DataContext.get_current().enable_progress_bars = progress
        if not progress:
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        embedder = cfg.embed.build()  # on the driver too: its fingerprint and dim, checks the model
        self.embedder_fingerprint, self.dim = embedder.fingerprint, embedder.dim
        del embedder
        ds = ray.data.read_parquet(str(corpus.parquet_path),
                                   columns=["id", "text", "split"] + (["prompt"] if corpus.records else []))
        self.embedded = ds.map_batches(
            EmbedBatch,
            fn_constructor_kwargs={"embed": cfg.embed.to_dict()},
            batch_size=cfg.embed.chunk_rows,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=rc.num_workers),
            num_cpus=rc.cpus_per_worker,
        ).materialize()
        self._corpus_ids = corpus.read(["id"]).column(0).combine_chunks()

    def _rows_of(self, ids: pa.Array) -> np.ndarray:
        rows = pc.index_in(ids, value_set=self._corpus_ids).to_numpy(zero_copy_only=False)
        if np.isnan(rows.astype(np.float64)).any():
            raise RuntimeError("the Ray pass returned document ids that are not in the corpus")
        return rows.astype(np.int64)

    def fit_sample(self) -> tuple[np.ndarray, np.ndarray]:
        rate = fit_rate(self.corpus, self.cfg.cluster.fit_sample)
        picked = self.embedded.map_batches(
            _pick_fit, fn_kwargs={"rate": rate, "seed": self.cfg.seed}, batch_format="numpy"
        )
        ids, embs = [], []
        for b in picked.iter_batches(batch_format="numpy", batch_size=None):
            ids.append(b["id"])
            embs.append(np.asarray(b["emb"], dtype=np.float32).reshape(-1, self.dim))
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        rows_S = self._rows_of(pa.array(np.concatenate(ids).tolist(), pa.string()))
        order = np.argsort(rows_S, kind="stable")
        return rows_S[order], np.concatenate(embs)[order]

    def assign(self, centroids_KD: np.ndarray) -> Assignment:
        out = self.embedded.map_batches(
            _assign,
            fn_kwargs={"centroids_KD": centroids_KD, "spherical": self.cfg.cluster.spherical},
            batch_format="numpy",
        )
        table = pa.concat_tables(
            [t.select(["id", "split", "cluster", "distance"]) for t in _arrow_batches(out)]
        )
        rows = self._rows_of(table.column("id").combine_chunks())
        if len(rows) != self.corpus.num_docs or len(np.unique(rows)) != len(rows):
            raise RuntimeError(f"the Ray pass assigned {len(rows)} of {self.corpus.num_docs} rows")
        table = table.take(pa.array(np.argsort(rows, kind="stable")))
        return Assignment(
            table.column("id").combine_chunks(),
            split_codes(table.column("split").to_pylist()),
            table.column("cluster").to_numpy().astype(np.int32),
            table.column("distance").to_numpy().astype(np.float32),
        )

    def close(self) -> None:
        del self.embedded
        if self._started:
            self._ray.shutdown()


def _arrow_batches(ds: Any):
    for b in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        yield b if isinstance(b, pa.Table) else pa.Table.from_batches([b])

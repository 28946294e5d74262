"""Regroup (R&B step 1): re-partition a corpus into semantic domains, written as a named artifact.

Ge et al., "R&B: Domain Regrouping and Data Mixture Balancing", arXiv 2505.00358 (2025):
embed the training documents, k-means them, pick k by silhouette, assign evaluation documents to
the nearest training centroid. Steps here:

1. embed every document (``embed.py``; cached, resumable) through an engine (``engine.py``, ``engines/``);
2. fit k-means on a seeded sample of at most ``cluster.fit_sample`` training documents
   (``cluster.py``), with k given or chosen by ``choose_k.py`` (``k="auto"``);
3. assign every document (train, validation, test) to its nearest centroid, in batches;
4. write the artifact (``data/cluster_store.py``): assignment, centroids, report, plots, and meta.json last.

    res = regroup(build_corpus("demo"), RegroupConfig(k=8))     # -> <cache>/regroup/<fp>/k8/
    RunConfig(...).merge(["data.domains=regrouped:k8"])         # train on the new domains

CLI (CPU, ~7 minutes for the 21k-document demo corpus, embedding dominates): ``domix regroup run demo --k 8``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from .. import io
from ..config import ConfigError
from ..corpus.builtin import open_corpus
from ..corpus.document import CorpusError
from ..corpus.store import Corpus
from ..data.cluster_store import check_name, cluster_names, start_artifact
from .choose_k import best_k, proxy_sweep, silhouette_sweep
from .config import RegroupConfig
from .embed import EmbedConfig
from .engine import Assignment, Engine, build_engine
from .plots import plot_k_curve, plot_map
from .report import build_report, render_markdown


@dataclass
class RegroupResult:
    name: str
    path: Path
    k: int
    meta: dict[str, Any]
    report: dict[str, Any]
    assignment: Assignment
    centroids_KD: np.ndarray

    @property
    def spec(self) -> str:
        return f"regrouped:{self.name}"


def check_unique_ids(corpus: Corpus) -> None:
    """Every id once: a 64-bit hash per id (8 bytes a document), exact check on hash matches."""
    parts = [
        np.fromiter((_h64(i) for i in batch.column(0).to_pylist()), np.uint64, batch.num_rows)
        for batch in corpus.iter_batches(["id"], 65536)
    ]
    srt = np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)
    clash = set(srt[1:][srt[1:] == srt[:-1]].tolist())
    if not clash:
        return
    seen, dup = set(), []
    for batch in corpus.iter_batches(["id"], 65536):
        for i in batch.column(0).to_pylist():
            if _h64(i) in clash:
                if i in seen and len(dup) < 5:
                    dup.append(i)
                seen.add(i)
    if dup:
        raise CorpusError(
            f"{corpus.parquet_path}: duplicate document ids {dup}: every document needs a unique "
            "id to be assigned a cluster; rebuild the corpus (domix corpus build refuses duplicates)"
        )


def _h64(doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "little")


def regroup(
    corpus: Corpus | str | Path,
    config: RegroupConfig | None = None,
    name: str | None = None,
    progress: bool = True,
) -> RegroupResult:
    """Cluster ``corpus`` into regrouped domains and write the artifact ``name`` (default k<k>)."""
    corpus, cfg = open_corpus(corpus), config or RegroupConfig()
    if name is not None:
        check_name(name)
    n_train = int(corpus.manifest["docs_per_split"]["train"])
    if isinstance(cfg.k, int) and cfg.k > n_train:
        raise ConfigError(
            f"k={cfg.k} is larger than the {n_train} training documents of corpus '{corpus.name}'"
        )
    check_unique_ids(corpus)
    t0 = time.perf_counter()
    engine = build_engine(corpus, cfg, progress)
    try:
        seconds = {"embed": round(time.perf_counter() - t0, 2)}
        rows_S, emb_SD = engine.fit_sample()
        selection = None
        if cfg.k == "auto":
            t1 = time.perf_counter()
            ks = cfg.choose_k.ks()
            if cfg.choose_k.method == "silhouette":
                curve = silhouette_sweep(
                    emb_SD, ks, cfg.cluster, cfg.seed, cfg.choose_k.silhouette_sample
                )
                key, k = "silhouette", best_k(curve, "silhouette", higher_is_better=True)
            else:

                def make(k_: int, name_: str) -> None:
                    _build(corpus, cfg, engine, rows_S, emb_SD, k_, name_, None, {}, progress)

                curve = proxy_sweep(corpus, cfg, ks, name or "proxy", make)
                key, k = "val_loss_macro", best_k(curve, "val_loss_macro", higher_is_better=False)
            selection = {"method": cfg.choose_k.method, "key": key, "best": k, "curve": curve}
            seconds["choose_k"] = round(time.perf_counter() - t1, 2)
        else:
            k = int(cfg.k)
        return _build(
            corpus, cfg, engine, rows_S, emb_SD, k, name or f"k{k}", selection, seconds, progress
        )
    finally:
        engine.close()


def _build(
    corpus: Corpus,
    cfg: RegroupConfig,
    engine: Engine,
    rows_S: np.ndarray,
    emb_SD: np.ndarray,
    k: int,
    name: str,
    selection: dict[str, Any] | None,
    seconds: dict[str, float],
    progress: bool,
) -> RegroupResult:
    out = start_artifact(corpus, name)
    t = time.perf_counter()
    km = cfg.cluster.fit(emb_SD, k, cfg.seed)
    seconds["fit"] = round(time.perf_counter() - t, 2)
    with io.atomic_path(out / "centroids.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, km.centroids_KD)
    t = time.perf_counter()
    asg = engine.assign(km.centroids_KD)
    seconds["assign"] = round(time.perf_counter() - t, 2)
    with io.atomic_path(out / "assignment.parquet") as tmp:
        pq.write_table(asg.to_table(), tmp)

    t = time.perf_counter()
    names = cluster_names(k)
    report = build_report(corpus, asg, names, cfg.seed, cfg.report_docs_per_cluster)
    dom_N = report.pop("_domain_codes")
    rng = np.random.default_rng(cfg.seed)
    pts = np.sort(rng.choice(len(rows_S), size=min(cfg.map_points, len(rows_S)), replace=False))
    plot_map(
        emb_SD[pts],
        asg.cluster_N[rows_S[pts]],
        dom_N[rows_S[pts]],
        names,
        report["original_domains"],
        out / "map.png",
    )
    if selection is not None:
        plot_k_curve(selection["curve"], selection["key"], k, out / "k_curve.png")
        report["k_selection"] = selection
    seconds["report"] = round(time.perf_counter() - t, 2)
    header = [
        f"- corpus `{corpus.name}` ({corpus.fingerprint[:12]}), {len(asg):,} documents: "
        + ", ".join(f"{s} {n:,}" for s, n in report["documents"].items()),
        f"- embedder `{_embedder_label(cfg.embed)}`, truncated at {cfg.embed.max_tokens} "
        f"tokens, engine `{cfg.engine}`",
        f"- k-means: k={k}, {km.clusterer}, {'spherical' if cfg.cluster.spherical else 'Euclidean'}"
        f", {cfg.cluster.n_init} restarts, fitted on {len(rows_S):,} training documents",
    ]
    if selection is not None:
        curve = ", ".join(f"{r['k']}: {r[selection['key']]:.4f}" for r in selection["curve"])
        header.append(f"- k chosen by {selection['method']} ({selection['key']}): {curve}")
    io.write_text(out / "report.md", render_markdown(report, f"Regrouped domains `{name}`", header))
    io.write_json(out / "report.json", report)
    meta = {
        "name": name,
        "corpus": corpus.name,
        "corpus_fingerprint": corpus.fingerprint,
        "embedder_fingerprint": engine.embedder_fingerprint,
        "assignment_fingerprint": io.file_fingerprint(out / "assignment.parquet"),
        "k": k,
        "cluster_names": names,
        "pbar": report["pbar"],
        "train_docs": [c["train_docs"] for c in report["clusters"]],
        "purity": report["purity"],
        "nmi": report["nmi"],
        "clusterer": km.clusterer,
        "objective": km.objective,
        "fit_sample_docs": len(rows_S),
        "k_selection": selection,
        "seconds": seconds,
        "config": cfg.to_dict(),
    }
    io.write_json(out / "meta.json", meta)  # last: its presence means the artifact is complete
    return RegroupResult(name, out, k, meta, report, asg, km.centroids_KD)


def _embedder_label(e: EmbedConfig) -> str:
    if e.name == "sentence-transformers":
        return f"sentence-transformers: {e.model or 'all-MiniLM-L6-v2'}"
    return e.name

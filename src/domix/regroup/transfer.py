"""Carry a clustering to another machine: ``domix regroup export`` / ``import``.

k-means on embeddings is not bit-for-bit the same on every CPU (the embedding and BLAS kernels
differ in the last bits, and a document near a boundary can change cluster), so a grid continued
on another machine may not be able to re-cluster to the same domains. The exported file holds the
clusters themselves, one label per corpus row, with the artifact's meta and report; importing it
writes an artifact whose domain set is the same data (``regrouped:<name>`` is fingerprinted from
the labels, not the file). It is a small gzip'd JSON (about 0.3 bytes a document):

    {"format": "domix-clusters/1", "corpus": ..., "corpus_fingerprint": ..., "name": "k10",
     "meta": {...}, "report_md": "...", "labels": [8, 8, 3, ...]}

The distances to the centroids are not carried (NaN in the imported ``assignment.parquet``); the
report is the exporting machine's.

    domix regroup export extended k10 clusters.json.gz
    domix regroup import extended clusters.json.gz            # on the other machine
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from .. import io
from ..corpus.document import CorpusError
from ..corpus.store import Corpus
from ..data.cluster_store import (
    artifact_dir,
    check_name,
    list_artifacts,
    load_clusters,
    start_artifact,
)
from .engine import Assignment, split_codes

FORMAT = "domix-clusters/1"


@dataclass(frozen=True)
class ClusterArtifact:
    """A regrouped domain set on disk (what ``import_clusters`` returns; ``RegroupResult`` has the same
    four fields)."""

    name: str
    path: Path
    k: int
    meta: dict[str, Any]


def export_clusters(corpus: Corpus, name: str, path: str | Path) -> Path:
    """Write artifact ``name``'s clusters, meta and report to ``path`` (gzip'd JSON, atomically)."""
    meta, labels = load_clusters(corpus, name)
    report = artifact_dir(corpus, name) / "report.md"
    doc = {"format": FORMAT, "corpus": corpus.name, "corpus_fingerprint": corpus.fingerprint, "name": name,
           "meta": meta, "report_md": report.read_text(encoding="utf-8") if report.exists() else "",
           "labels": labels.tolist()}
    path = Path(path)
    with io.atomic_path(path) as tmp, open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(json.dumps(doc, separators=(",", ":")).encode())
    return path


def read_clusters(path: str | Path, corpus: Corpus) -> dict[str, Any]:
    """The exported file, checked against ``corpus``: a clear error naming the file when it is not
    one, was made for another corpus, or its labels do not fit."""
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError as e:
        raise CorpusError(f"{path}: no such clusters file (write one with `domix regroup export`)") from e
    except (OSError, EOFError, ValueError) as e:
        raise CorpusError(f"{path}: not a clusters file written by `domix regroup export` ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CorpusError(f"{path}: not a clusters file (format {FORMAT!r} expected)")
    missing = [k for k in ("corpus", "corpus_fingerprint", "name", "meta", "labels") if k not in doc]
    if missing or not isinstance(doc["meta"], dict) or not isinstance(doc["meta"].get("cluster_names"), list):
        raise CorpusError(f"{path}: incomplete clusters file (missing {missing or ['meta.cluster_names']})")
    if doc["corpus_fingerprint"] != corpus.fingerprint:
        raise CorpusError(f"{path}: clusters of another corpus ('{doc['corpus']}', fingerprint "
                          f"{doc['corpus_fingerprint']}; this corpus '{corpus.name}' is {corpus.fingerprint})")
    try:
        labels, k = np.asarray(doc["labels"], dtype=np.int64).reshape(-1), len(doc["meta"]["cluster_names"])
    except (TypeError, ValueError) as e:
        raise CorpusError(f"{path}: the labels are not a list of cluster numbers ({e})") from e
    if len(labels) != corpus.num_docs or (labels.size and not (labels.min() >= 0 and labels.max() < k)):
        raise CorpusError(f"{path}: {len(labels)} labels in [{labels.min(initial=0)}, {labels.max(initial=0)}] "
                          f"for a corpus of {corpus.num_docs} documents and {k} clusters")
    doc["labels"] = labels.astype(np.int32)
    check_name(doc["name"])
    return doc


def import_clusters(corpus: Corpus, path: str | Path, name: str | None = None,
                    replace: bool = False) -> ClusterArtifact:
    """Write the artifact of an exported file (named as exported, or ``name``), unless one with the
    same clusters is already there; returns it. An artifact of that name with other clusters is an
    error unless ``replace``."""
    doc = read_clusters(path, corpus)
    name = check_name(name or doc["name"])
    if name in list_artifacts(corpus):
        meta, labels = load_clusters(corpus, name)
        if np.array_equal(labels, doc["labels"]):
            return ClusterArtifact(name, artifact_dir(corpus, name), len(meta["cluster_names"]), meta)
        if not replace:
            moved = int((labels != doc["labels"]).sum())
            raise CorpusError(f"regrouped:{name} of '{corpus.name}' already exists with other clusters "
                              f"({moved:,} documents differ): import under another --name, or --replace it")
    out = start_artifact(corpus, name)
    t = corpus.read(["id", "split"])
    asg = Assignment(t.column("id"), split_codes(t.column("split").to_pylist()), doc["labels"],
                     np.full(corpus.num_docs, np.nan, dtype=np.float32))
    with io.atomic_path(out / "assignment.parquet") as tmp:
        pq.write_table(asg.to_table(), tmp)
    io.write_text(out / "report.md", doc["report_md"] + f"\n\nImported from `{path}`; distances not carried.\n")
    meta = doc["meta"] | {"name": name, "corpus": corpus.name, "corpus_fingerprint": corpus.fingerprint,
                          "k": len(doc["meta"]["cluster_names"]), "imported_from": str(path),
                          "assignment_fingerprint": io.file_fingerprint(out / "assignment.parquet")}
    io.write_json(out / "meta.json", meta)  # last: its presence means the artifact is complete
    return ClusterArtifact(name, out, len(meta["cluster_names"]), meta)

"""The regroup artifact: where a named clustering of a corpus lives and how it is read back.

Written by ``domix.regroup`` (``start_artifact``, then its files, then ``meta.json``), read here by
the ``regrouped:<name>`` domain set (``domains.py``): the data layer owns the format, regroup
produces it.

    <cache>/regroup/<corpus fp[:16]>/<name>/
        assignment.parquet   id, row (corpus row), split, cluster, distance (one row per document)
        centroids.npy        float32 [k, dim]
        report.md, report.json, map.png, k_curve.png (when k was swept)
        meta.json            written LAST: k, config, fingerprints, cluster names, pbar, purity, NMI

A folder without meta.json is unfinished and ignored. Nothing in the corpus is rewritten.

    domix regroup list demo        domix regroup show demo k8
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from .. import io
from ..corpus.document import CorpusError
from ..corpus.store import Corpus

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise CorpusError(
            f"regroup name {name!r}: use 1-64 letters, digits, '_', '-' or '.' (it names a folder "
            "and the domain set regrouped:<name>)"
        )
    return name


def regroup_root(corpus: Corpus) -> Path:
    return io.cache_dir() / "regroup" / corpus.fingerprint[:16]


def artifact_dir(corpus: Corpus, name: str) -> Path:
    return regroup_root(corpus) / check_name(name)


def list_artifacts(corpus: Corpus) -> list[str]:
    root = regroup_root(corpus)
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "meta.json").exists())


def start_artifact(corpus: Corpus, name: str) -> Path:
    """An empty folder for a new artifact (a previous one of that name is replaced)."""
    out = artifact_dir(corpus, name)
    if (out / "meta.json").exists():
        (out / "meta.json").unlink()  # first, so a half-replaced artifact is never read
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return out


def load_meta(corpus: Corpus, name: str) -> dict[str, Any]:
    """The meta of ``name``; a clear error listing the available names when it is missing."""
    out = artifact_dir(corpus, name)
    if not (out / "meta.json").exists():
        have = list_artifacts(corpus)
        listed = ", ".join(have) if have else "none yet"
        raise CorpusError(
            f"no regrouped domains '{name}' for corpus '{corpus.name}' (available: {listed}). "
            f"Make them with `domix regroup run {corpus.name} --k 8 --name {name}`"
        )
    meta = io.read_json(out / "meta.json")
    if meta.get("corpus_fingerprint") != corpus.fingerprint:
        raise CorpusError(
            f"{out}: regrouped domains '{name}' were made for another corpus (fingerprint "
            f"{meta.get('corpus_fingerprint')}, this corpus is {corpus.fingerprint}); "
            f"run `domix regroup run` again for this corpus"
        )
    return meta


def load_clusters(corpus: Corpus, name: str) -> tuple[dict[str, Any], np.ndarray]:
    """(meta, cluster int32 per corpus row) of artifact ``name``."""
    meta = load_meta(corpus, name)
    path = artifact_dir(corpus, name) / "assignment.parquet"
    t = pq.read_table(path, columns=["row", "cluster"])
    rows = t.column("row").to_numpy()
    if len(rows) != corpus.num_docs:
        raise CorpusError(f"{path}: {len(rows)} rows for a corpus of {corpus.num_docs}")
    labels = np.full(corpus.num_docs, -1, dtype=np.int32)
    labels[rows] = t.column("cluster").to_numpy()
    return meta, labels


def cluster_names(k: int) -> list[str]:
    width = max(2, len(str(k - 1)))
    return [f"c{i:0{width}d}" for i in range(k)]

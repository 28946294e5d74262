"""domix regroup export / import: the clusters travel, the domain set stays the same data."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from domix import io
from domix.corpus import CorpusError
from domix.data.cluster_store import artifact_dir, load_clusters
from domix.data.domains import resolve_domains
from domix.regroup.transfer import export_clusters, import_clusters


@pytest.fixture
def exported(hashing_regroup, demo_corpus, tmp_path):
    return export_clusters(demo_corpus, "h5", tmp_path / "h5.clusters.json.gz")


def _rewrite(path, **changes):
    with gzip.open(path, "rt") as f:
        doc = json.load(f)
    with gzip.open(path, "wt") as f:
        json.dump(doc | changes, f)


def test_round_trip_gives_the_same_clusters_and_keeps_an_identical_artifact(exported, hashing_regroup, demo_corpus):
    art = import_clusters(demo_corpus, exported, name="h5-copy")
    _, labels = load_clusters(demo_corpus, "h5-copy")
    assert np.array_equal(labels, hashing_regroup.assignment.cluster_N)
    assert art.k == 5 and art.meta["nmi"] == hashing_regroup.meta["nmi"] and art.meta["imported_from"] == str(exported)
    assert "Imported from" in (art.path / "report.md").read_text()
    assert np.isnan(pq.read_table(art.path / "assignment.parquet").column("distance").to_numpy()).all()
    stamp = (art.path / "meta.json").stat().st_mtime_ns
    assert import_clusters(demo_corpus, exported, name="h5-copy").path == art.path  # same clusters: kept
    assert (art.path / "meta.json").stat().st_mtime_ns == stamp


def test_the_domain_fingerprint_follows_the_clusters_not_the_file(exported, demo_corpus):
    import_clusters(demo_corpus, exported, name="h5-fp")
    before = resolve_domains(demo_corpus, "regrouped:h5-fp")
    path = artifact_dir(demo_corpus, "h5-fp") / "assignment.parquet"
    t = pq.read_table(path)
    for distance, cluster in ((pc.add(t.column("distance"), 1.0), t.column("cluster")),  # another CPU's distances
                              (t.column("distance"), pc.subtract(pc.max(t.column("cluster")), t.column("cluster")))):
        changed = t.set_column(3, "cluster", cluster).set_column(4, "distance", distance)
        pq.write_table(changed, path)
        meta = io.read_json(path.parent / "meta.json")
        io.write_json(path.parent / "meta.json", meta | {"assignment_fingerprint": io.file_fingerprint(path)})
        after = resolve_domains(demo_corpus, "regrouped:h5-fp")
        assert (after.fingerprint == before.fingerprint) == np.array_equal(after.labels, before.labels)
    assert after.fingerprint != before.fingerprint  # the second change moved documents


def test_bad_files_and_clashes_are_clear_errors(exported, demo_corpus, tmp_path):
    import_clusters(demo_corpus, exported, name="h5-clash")
    with gzip.open(exported, "rt") as f:
        labels = json.load(f)["labels"]
    other = tmp_path / "other.json.gz"
    other.write_bytes(exported.read_bytes())
    _rewrite(other, labels=[(x + 1) % 5 for x in labels])
    with pytest.raises(CorpusError, match=r"regrouped:h5-clash .* already exists with other clusters .*--replace"):
        import_clusters(demo_corpus, other, name="h5-clash")
    assert np.array_equal(load_clusters(demo_corpus, "h5-clash")[1], labels)  # untouched by the refusal
    import_clusters(demo_corpus, other, name="h5-clash", replace=True)
    assert load_clusters(demo_corpus, "h5-clash")[1].tolist() == [(x + 1) % 5 for x in labels]

    bad = tmp_path / "bad.json.gz"
    bad.write_text("not gzip")
    with pytest.raises(CorpusError, match=r"bad.json.gz: not a clusters file"):
        import_clusters(demo_corpus, bad)
    with pytest.raises(CorpusError, match=r"no such clusters file"):
        import_clusters(demo_corpus, tmp_path / "missing.json.gz")
    _rewrite(other, corpus_fingerprint="0" * 32)
    with pytest.raises(CorpusError, match=r"other.json.gz: clusters of another corpus"):
        import_clusters(demo_corpus, other)
    other.write_bytes(exported.read_bytes())
    _rewrite(other, labels=labels[:-1])
    with pytest.raises(CorpusError, match=rf"{len(labels) - 1} labels .* a corpus of {len(labels)} documents"):
        import_clusters(demo_corpus, other)
    other.write_bytes(exported.read_bytes())
    _rewrite(other, labels=["x"] * len(labels))
    with pytest.raises(CorpusError, match=r"other.json.gz: the labels are not a list of cluster numbers"):
        import_clusters(demo_corpus, other)

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from domix import io
from domix.config import ConfigError
from domix.corpus import Corpus, CorpusError
from domix.corpus.split import SPLITS
from domix.data.domains import resolve_domains
from domix.regroup import EmbeddingCache, list_artifacts, regroup
from domix.regroup.cluster import assign


def test_artifact_files_and_meta(hashing_regroup, demo_corpus):
    res = hashing_regroup
    files = {p.name for p in res.path.iterdir()}
    assert {
        "assignment.parquet",
        "centroids.npy",
        "meta.json",
        "report.md",
        "report.json",
        "map.png",
    } <= files
    assert "k_curve.png" not in files  # k was given
    meta = io.read_json(res.path / "meta.json")
    assert meta["k"] == 5 and meta["cluster_names"] == ["c00", "c01", "c02", "c03", "c04"]
    assert meta["corpus_fingerprint"] == demo_corpus.fingerprint
    assert abs(sum(meta["pbar"]) - 1) < 1e-6 and len(meta["pbar"]) == 5
    t = pq.read_table(res.path / "assignment.parquet")
    assert t.column_names == ["id", "row", "split", "cluster", "distance"]
    assert t.column("id").to_pylist() == demo_corpus.read(["id"]).column(0).to_pylist()
    assert t.column("split").to_pylist() == demo_corpus.read(["split"]).column(0).to_pylist()
    assert "h5" in list_artifacts(demo_corpus)


def test_every_document_goes_to_its_nearest_training_centroid(
    hashing_regroup, demo_corpus, hashing_config
):
    res = hashing_regroup
    emb = EmbeddingCache.for_corpus(demo_corpus, hashing_config.embed.build())
    x = emb.read_rows(0, demo_corpus.num_docs)
    c = np.load(res.path / "centroids.npy")
    sims = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ c.T
    assert np.array_equal(res.assignment.cluster_N, sims.argmax(1))
    split = res.assignment.split_N
    train = split == SPLITS.index("train")
    assert set(res.assignment.cluster_N[~train]) <= set(res.assignment.cluster_N[train])
    assert (np.bincount(res.assignment.cluster_N[train], minlength=5) > 0).all()
    val = res.assignment.cluster_N[split == SPLITS.index("validation")]
    assert np.allclose(res.meta["pbar"], np.bincount(val, minlength=5) / len(val), atol=1e-6)
    assert res.meta["fit_sample_docs"] == int(train.sum())  # fit_sample exceeds the slice


def test_fit_sample_caps_the_documents_kmeans_sees(demo_corpus, hashing_config):
    cfg = hashing_config.merge(["cluster.fit_sample=200", "k=3"])
    res = regroup(demo_corpus, cfg, name="small-fit", progress=False)
    assert 120 < res.meta["fit_sample_docs"] < 280  # a seeded Bernoulli sample by id hash
    lab, _ = assign(
        EmbeddingCache.for_corpus(demo_corpus, cfg.embed.build()).read_rows(0, 600),
        res.centroids_KD,
        spherical=True,
    )
    assert np.array_equal(lab, res.assignment.cluster_N)


def test_regrouped_domain_layer_resolves_and_refuses_other_corpora(hashing_regroup, demo_corpus):
    ds = resolve_domains(demo_corpus, "regrouped:h5")
    assert ds.names == ("c00", "c01", "c02", "c03", "c04")
    assert np.array_equal(ds.labels, hashing_regroup.assignment.cluster_N)
    assert ds.labels.dtype == np.int32
    with pytest.raises(CorpusError, match=r"no regrouped domains 'nope'.*available: .*h5"):
        resolve_domains(demo_corpus, "regrouped:nope")
    meta_path = hashing_regroup.path / "meta.json"
    meta = io.read_json(meta_path)
    try:
        io.write_json(meta_path, {**meta, "corpus_fingerprint": "0" * 32})
        with pytest.raises(CorpusError, match="made for another corpus"):
            resolve_domains(demo_corpus, "regrouped:h5")
    finally:
        io.write_json(meta_path, meta)


def test_bad_inputs_are_clear_errors_and_write_nothing(demo_corpus, hashing_config, tmp_path):
    n_train = demo_corpus.manifest["docs_per_split"]["train"]
    with pytest.raises(ConfigError, match=f"k=9999 is larger than the {n_train} training"):
        regroup(demo_corpus, hashing_config.merge(["k=9999"]), name="too-big", progress=False)
    with pytest.raises(ConfigError, match="k must be a number of clusters or 'auto'"):
        hashing_config.merge(["k=lots"])
    with pytest.raises(CorpusError, match="regroup name"):
        regroup(demo_corpus, hashing_config, name="a/b", progress=False)
    # a corpus whose Parquet was edited to hold a duplicate id
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / "manifest.json").write_text((demo_corpus.path / "manifest.json").read_text())
    t = demo_corpus.read()
    ids = t.column("id").to_pylist()
    ids[3] = ids[0]
    pq.write_table(t.set_column(0, "id", pa.array(ids)), dup / "corpus.parquet")
    with pytest.raises(CorpusError, match="duplicate document ids"):
        regroup(Corpus(dup), hashing_config, name="dup", progress=False)
    assert "too-big" not in list_artifacts(demo_corpus)


def test_k_auto_sweeps_silhouette_and_reports_the_curve(demo_corpus, hashing_config):
    cfg = hashing_config.merge(
        ["k=auto", "choose_k.k_min=2", "choose_k.k_max=8", "choose_k.k_step=3"]
    )
    res = regroup(demo_corpus, cfg, progress=False)
    sel = res.meta["k_selection"]
    assert [r["k"] for r in sel["curve"]] == [2, 5, 8]
    best = max(sel["curve"], key=lambda r: r["silhouette"])
    assert res.k == sel["best"] == best["k"] and res.name == f"k{res.k}"
    assert (res.path / "k_curve.png").stat().st_size > 1000
    assert (
        json.loads((res.path / "report.json").read_text())["k_selection"]["curve"] == sel["curve"]
    )
    md = (res.path / "report.md").read_text()
    assert "k chosen by silhouette" in md and "## Choosing k (silhouette" in md

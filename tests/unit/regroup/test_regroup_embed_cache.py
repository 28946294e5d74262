import numpy as np
import pytest

from domix.config import ConfigError
from domix.corpus import CorpusError, Document, ReadReport, write_corpus
from domix.regroup import EmbedConfig, EmbeddingCache, EmbedError
from domix.regroup.embed import check_texts


class Counting:
    """Wraps an embedder, recording every text it embeds."""

    def __init__(self, inner):
        self.inner, self.seen = inner, []
        self.dim, self.fingerprint = inner.dim, inner.fingerprint

    def embed(self, texts):
        self.seen.extend(texts)
        return self.inner.embed(texts)


class Stop(Exception):
    pass


def _texts(corpus):
    return corpus.read(["text"]).column(0).to_pylist()


def test_hashing_embedder_is_deterministic_normalised_and_batch_independent(demo_corpus):
    texts = _texts(demo_corpus)[:50]
    a = EmbedConfig(name="hashing").build().embed(texts)
    again = EmbedConfig(name="hashing").build()
    b = np.concatenate([again.embed([t]) for t in texts])
    assert a.shape == (50, 384) and np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    c = EmbedConfig(name="hashing", seed=1).build()
    assert c.fingerprint != EmbedConfig(name="hashing").build().fingerprint
    assert not np.allclose(c.embed(texts), a)


def test_interrupted_fill_resumes_where_it_stopped_and_equals_an_uninterrupted_run(
    demo_corpus, tmp_path
):
    full = EmbeddingCache.for_corpus(
        demo_corpus, EmbedConfig(name="hashing").build(), tmp_path / "full"
    )
    full.fill(demo_corpus, EmbedConfig(name="hashing").build(), chunk_rows=100, progress=False)

    first = Counting(EmbedConfig(name="hashing").build())

    def die_after_two_chunks(done, total):
        if done >= 200:
            raise Stop

    cut = EmbeddingCache.for_corpus(demo_corpus, first, tmp_path / "cut")
    with pytest.raises(Stop):
        cut.fill(demo_corpus, first, chunk_rows=100, progress=False, on_commit=die_after_two_chunks)
    assert len(first.seen) == 200 and not cut.complete

    second = Counting(EmbedConfig(name="hashing").build())
    resumed = EmbeddingCache.for_corpus(demo_corpus, second, tmp_path / "cut")  # a new process
    assert resumed.done_rows == 200
    resumed.fill(demo_corpus, second, chunk_rows=100, progress=False)
    texts = _texts(demo_corpus)
    assert second.seen == texts[200:]  # only the rest, in order
    assert resumed.complete and np.array_equal(resumed.array(), full.array())
    rows = np.array([0, 5, 199, 200, 599])
    assert np.array_equal(resumed.gather(rows, chunk_rows=64), full.read_rows(0, 600)[rows])


def test_cache_of_another_corpus_or_embedder_is_refused(demo_corpus, tmp_path):
    emb = EmbedConfig(name="hashing").build()
    EmbeddingCache.for_corpus(demo_corpus, emb, tmp_path / "c").fill(
        demo_corpus, emb, progress=False
    )
    docs = [Document(f"d{i}", f"text number {i} about things", "a") for i in range(60)]
    other = write_corpus(docs, tmp_path / "other", "other", ReadReport())
    with pytest.raises(CorpusError, match="embedding cache of another corpus"):
        EmbeddingCache.for_corpus(other, emb, tmp_path / "c")
    with pytest.raises(CorpusError, match="different embedder_fingerprint"):
        EmbeddingCache.for_corpus(
            demo_corpus, EmbedConfig(name="hashing", seed=3).build(), tmp_path / "c"
        )


def test_empty_text_is_dropped_from_corpora_and_an_error_for_the_embedder(tmp_path):
    docs = [Document(f"d{i}", f"some words {i}", "a") for i in range(30)]
    docs[7] = Document("blank-doc", "   ", "a")
    corpus = write_corpus(docs, tmp_path / "blank", "blank", ReadReport(read=30, kept=30))
    assert corpus.num_docs == 29 and corpus.report.dropped["empty text"] == 1
    assert corpus.report.examples["empty text"] == ["blank-doc"] and corpus.report.kept == 29
    emb = EmbedConfig(name="hashing").build()
    with pytest.raises(EmbedError, match="empty text"):
        emb.embed(["fine", ""])
    with pytest.raises(EmbedError, match=r"ids \['x2'\]"):
        check_texts(["a", "b", " "], ["x0", "x1", "x2"])


def test_model_path_that_does_not_exist_names_the_path(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match="no-such-model.*does not exist"):
        EmbedConfig(model=str(missing)).build()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a sentence-transformers model folder"):
        EmbedConfig(model=str(tmp_path / "empty")).build()
    with pytest.raises(ConfigError, match="unknown embedder 'nope'"):
        EmbedConfig(name="nope").build()


def test_model_fingerprint_tracks_truncation_and_precision():
    fps = {
        EmbedConfig(max_tokens=t, precision=p).build().fingerprint
        for t, p in [(128, "fp32"), (64, "fp32"), (128, "bf16")]
    }
    assert len(fps) == 3


def test_real_model_vectors_do_not_depend_on_batching_or_order(demo_corpus):
    """sentence-transformers sorts each call's texts by length so batches carry little padding, and
    puts the rows back: a text's vector is the same alone, in a batch of mixed lengths, in any order."""
    texts = _texts(demo_corpus)[::37][:24]
    texts = [t if i % 3 else " ".join(t.split()[: 3 + i]) for i, t in enumerate(texts)]  # short and long
    emb = EmbedConfig(precision="fp32", batch_size=8).build()
    together = emb.embed(texts)
    alone = np.concatenate([emb.embed([t]) for t in texts])
    perm = np.random.default_rng(0).permutation(len(texts))
    shuffled = emb.embed([texts[i] for i in perm])
    np.testing.assert_allclose(together, alone, atol=2e-5)
    np.testing.assert_allclose(shuffled, together[perm], atol=2e-5)


def test_onnx_backend_matches_torch_and_exports_once(demo_corpus, capsys):
    """The model's own pipeline exported to ONNX once into the cache: fp32 gives torch's vectors,
    int8 weights stay close; each has its own fingerprint (so its own embedding cache)."""
    pytest.importorskip("onnxruntime")
    texts = _texts(demo_corpus)[::53][:12]
    torch_fp32 = EmbedConfig(precision="fp32").build()
    want = torch_fp32.embed(texts)
    fp32 = EmbedConfig(name="onnx").build()
    int8 = EmbedConfig(name="onnx", quantize="int8").build()
    assert capsys.readouterr().out.count("exporting the embedding model to ONNX") == 1
    np.testing.assert_allclose(fp32.embed(texts), want, atol=1e-5)
    assert (int8.embed(texts) * want).sum(1).min() > 0.97
    assert len({torch_fp32.fingerprint, fp32.fingerprint, int8.fingerprint}) == 3
    assert int8.path.name == "model-int8.onnx" and int8.path.parent == fp32.path.parent


def test_onnx_backend_without_onnxruntime_falls_back_to_torch(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    emb = EmbedConfig(name="onnx", precision="fp32").build()
    assert "onnxruntime is not installed" in capsys.readouterr().out
    assert emb.fingerprint == EmbedConfig(precision="fp32").build().fingerprint


def test_real_model_clusters_the_demo_slice_by_meaning(model_regroup):
    """all-MiniLM-L6-v2 (offline, from its PyPI package) recovers the five source domains."""
    meta = model_regroup.meta
    assert meta["embedder_fingerprint"] != EmbedConfig(name="hashing").build().fingerprint
    assert meta["nmi"] > 0.8 and meta["purity"] > 0.85, (meta["nmi"], meta["purity"])
    tops = {c["top_domain"] for c in model_regroup.report["clusters"]}
    assert tops == {"code", "dialogue", "drama", "math", "news"}

import pytest

from domix.corpus import Corpus, CorpusError, Document, ReadReport, SplitConfig, write_corpus
from domix.corpus.chunk import chunk_text
from domix.corpus.split import assign_split


def _docs(n_per_domain=200, domains=("a", "b")):
    return [
        Document(f"{d}-{i}", f"text {d} {i}", d, "s1" if i % 2 else None)
        for d in domains
        for i in range(n_per_domain)
    ]


def test_split_depends_on_id_only():
    ids = [f"doc-{i}" for i in range(5000)]
    first = {i: assign_split(i, 0.1, 0.05) for i in ids}
    again = {i: assign_split(i, 0.1, 0.05) for i in reversed(ids)}
    assert first == again
    share = sum(s == "validation" for s in first.values()) / len(ids)
    assert 0.08 < share < 0.12
    assert sum(s == "test" for s in first.values()) / len(ids) == pytest.approx(0.05, abs=0.015)


def test_write_corpus_summary_fingerprint_and_order_independence_of_splits(tmp_path):
    docs = _docs()
    c1 = write_corpus(docs, tmp_path / "c1", "c", ReadReport(read=400, kept=400))
    c2 = write_corpus(list(reversed(docs)), tmp_path / "c2", "c", ReadReport())
    assert c1.num_docs == 400 and c1.domains == ["a", "b"]
    assert c1.manifest["summary"]["a"]["subdomains"]["s1"]["docs"] == 100
    split1 = dict(
        zip(c1.read(["id"]).column(0).to_pylist(), c1.read(["split"]).column(0).to_pylist())
    )
    split2 = dict(
        zip(c2.read(["id"]).column(0).to_pylist(), c2.read(["split"]).column(0).to_pylist())
    )
    assert split1 == split2
    assert c1.fingerprint != c2.fingerprint  # row order is content
    c3 = write_corpus(docs, tmp_path / "c3", "c", ReadReport())
    assert c3.fingerprint == c1.fingerprint
    docs[0] = Document(docs[0].id, docs[0].text + "!", "a")
    assert write_corpus(docs, tmp_path / "c4", "c", ReadReport()).fingerprint != c1.fingerprint
    assert Corpus.open(tmp_path / "c1").fingerprint == c1.fingerprint


def test_duplicate_ids_are_an_error(tmp_path):
    with pytest.raises(CorpusError, match="duplicate document id 'x'"):
        write_corpus(
            [Document("x", "one", "a"), Document("x", "two", "a")],
            tmp_path / "c",
            "c",
            ReadReport(),
        )


def test_small_domain_error_names_it_or_drops_and_counts(tmp_path):
    docs = _docs(200, ("big",)) + [Document("tiny-1", "only one", "tiny")]
    with pytest.raises(
        CorpusError, match=r"'tiny' \(\d train, 0 validation of 1\).*--drop-small-domains"
    ):
        write_corpus(docs, tmp_path / "c", "c", ReadReport())
    report = ReadReport(read=201, kept=201)
    c = write_corpus(docs, tmp_path / "c", "c", report, SplitConfig(small_domains="drop"))
    assert c.domains == ["big"] and c.num_docs == 200
    assert c.report.dropped["domain too small to split"] == 1 and c.report.kept == 200


def test_unbuilt_or_missing_corpus_errors_say_what_to_do(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "corpus.parquet").write_bytes(b"")
    with pytest.raises(CorpusError, match="interrupted build"):
        Corpus(tmp_path / "half")
    with pytest.raises(CorpusError, match="domix corpus build"):
        Corpus.open("no-such-corpus")
    with pytest.raises(CorpusError, match="no documents were read"):
        write_corpus([], tmp_path / "empty", "c", ReadReport())


def test_chunk_text_packs_paragraphs_and_drops_short():
    paras = ["p" * 900, "q" * 900, "r" * 900, "tiny"]
    chunks, dropped = chunk_text("\n\n".join(paras), max_chars=2000, min_chars=200)
    assert chunks == ["p" * 900 + "\n\n" + "q" * 900, "r" * 900 + "\n\ntiny"]
    assert dropped == 0
    # an over-long line is cut hard; its remainder packs with the next paragraph
    chunks, dropped = chunk_text("x" * 5000 + "\n\nshort", max_chars=2000, min_chars=200)
    assert [len(c) for c in chunks] == [2000, 2000, 1007] and dropped == 0
    chunks, dropped = chunk_text("a" * 1990 + "\n\nshort tail", max_chars=2000, min_chars=200)
    assert chunks == ["a" * 1990] and dropped == 1

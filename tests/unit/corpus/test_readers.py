import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from domix.corpus import CorpusError, Fields, ReadReport, read


def _jsonl(path, lines):
    path.write_bytes(
        b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    )
    return path


def test_malformed_json_names_file_and_line(tmp_path):
    f = _jsonl(
        tmp_path / "data.jsonl",
        [json.dumps({"id": "a", "text": "hello", "domain": "x"}), "{not json"],
    )
    with pytest.raises(CorpusError, match=r"data\.jsonl:2: malformed JSON"):
        list(read("jsonl", f))


def test_skip_mode_counts_bad_lines_with_locations(tmp_path):
    f = _jsonl(
        tmp_path / "data.jsonl",
        [
            json.dumps({"id": "a", "text": "hello", "domain": "x"}),
            "{broken",
            json.dumps([1, 2]),
            json.dumps({"id": "c", "text": "no domain"}),
        ],
    )
    report = ReadReport()
    docs = list(read("jsonl", f, Fields(on_error="skip"), report))
    assert [d.id for d in docs] == ["a"]
    assert report.read == 4 and report.kept == 1
    assert report.dropped["malformed JSON"] == 1 and report.examples["malformed JSON"] == [f"{f}:2"]
    assert report.dropped["not a JSON object"] == 1
    assert sum(report.dropped.values()) == 3  # nothing silently lost


def test_undecodable_bytes_replaced_and_counted_empty_dropped(tmp_path):
    f = _jsonl(
        tmp_path / "d.jsonl",
        [
            b'{"id": "a", "text": "caf\xe9 au lait", "domain": "x"}',
            json.dumps({"id": "b", "text": "   \n ", "domain": "x"}),
            json.dumps({"id": "c", "text": "fine", "domain": "y", "subdomain": "s"}),
        ],
    )
    report = ReadReport()
    docs = list(read("jsonl", f, report=report))
    assert [d.id for d in docs] == ["a", "c"]
    assert "\ufffd" in docs[0].text and docs[1].subdomain == "s"
    assert report.repaired["undecodable bytes replaced with U+FFFD"] == 1
    assert report.dropped["empty text"] == 1 and report.examples["empty text"] == [f"{f}:2"]


def test_configurable_columns_default_domain_and_generated_ids(tmp_path):
    f = _jsonl(
        tmp_path / "d.jsonl", [json.dumps({"body": "some text"}), json.dumps({"body": "more"})]
    )
    docs = list(read("jsonl", f, Fields(text="body", id=None, default_domain="web")))
    assert [(d.id, d.domain) for d in docs] == [("d.jsonl:1", "web"), ("d.jsonl:2", "web")]
    with pytest.raises(CorpusError, match=r"d\.jsonl:1: no 'text' field"):
        list(read("jsonl", f))
    with pytest.raises(CorpusError, match="no such file"):
        list(read("jsonl", tmp_path / "missing.jsonl"))


def test_parquet_reader(tmp_path):
    t = pa.table({"doc": ["x1", "x2"], "content": ["alpha", ""], "src": ["a", "b"]})
    pq.write_table(t, tmp_path / "part.parquet")
    report = ReadReport()
    docs = list(read("parquet", tmp_path, Fields(text="content", id="doc", domain="src"), report))
    assert [(d.id, d.text, d.domain) for d in docs] == [("x1", "alpha", "a")]
    assert report.dropped["empty text"] == 1


def test_text_dir_reader_domain_from_folder(tmp_path):
    (tmp_path / "news" / "sport").mkdir(parents=True)
    (tmp_path / "news" / "sport" / "1.txt").write_text("match report")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "a.py").write_bytes(b"print('\xff')")
    (tmp_path / "stray.txt").write_text("no domain")
    report = ReadReport()
    docs = {d.id: d for d in read("textdir", tmp_path, report=report)}
    assert (
        docs["news/sport/1.txt"].domain == "news" and docs["news/sport/1.txt"].subdomain == "sport"
    )
    assert docs["code/a.py"].subdomain is None and "\ufffd" in docs["code/a.py"].text
    assert report.dropped["file directly under the root (no domain folder)"] == 1


def test_hf_dataset_object_and_saved_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": ["a doc", "b doc"], "label": ["x", "y"]})
    fields = Fields(id=None, domain="label")
    assert [d.domain for d in read("hf", ds, fields)] == ["x", "y"]
    ds.save_to_disk(str(tmp_path / "saved"))
    assert [d.text for d in read("hf", tmp_path / "saved", fields)] == ["a doc", "b doc"]
    with pytest.raises(CorpusError, match="no such dataset folder"):
        list(read("hf", tmp_path / "nope", fields))

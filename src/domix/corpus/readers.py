"""Readers for a user's own corpus: JSONL, Parquet, a folder of text files, a Hugging Face dataset.

Every reader yields ``Document``s and records into a ``ReadReport`` what it repaired or dropped.
Column names are configurable with ``Fields``. Bad input is reported with its location:

- malformed JSON raises ``CorpusError("data.jsonl:17: malformed JSON: ...")`` (or, with
  ``on_error="skip"``, is skipped and counted with its location);
- undecodable bytes are replaced with U+FFFD and counted;
- empty documents are dropped and counted.

Prompt/response records (instruction data) are read by naming the prompt fields: with
``Fields(text="output", prompt=["instruction", "input"], domain="category")`` a record's
response is ``output`` and its prompt the non-empty prompt fields joined by a blank line; the
corpus then stores both, and training masks the loss to the response (``data/records.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..config import Config
from ..registry import Registry
from .document import CorpusError, Document, ReadReport

Reader = Callable[[Any, "Fields", ReadReport], Iterator[Document]]
READERS: Registry[Reader] = Registry("corpus reader")


@dataclass
class Fields(Config):
    """Which columns hold what. ``id=None`` numbers records by file and line.

    ``prompt``: prompt/response records: the prompt fields, in order (e.g. ``instruction``,
    ``input``); ``text`` is then the response field. A record needs its response and at least one
    non-empty prompt field."""

    text: str = "text"
    id: str | None = "id"
    domain: str | None = "domain"
    subdomain: str | None = "subdomain"
    default_domain: str | None = None
    encoding: str = "utf-8"
    on_error: Literal["raise", "skip"] = "raise"
    prompt: list[str] | None = None


def read(
    kind: str, source: Any, fields: Fields | None = None, report: ReadReport | None = None
) -> Iterator[Document]:
    """Read documents with the reader registered as ``kind`` (jsonl, parquet, textdir, hf)."""
    return READERS.get(kind)(
        source, fields or Fields(), report if report is not None else ReadReport()
    )


def _decode(raw: bytes, encoding: str, where: str, report: ReadReport) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        text = raw.decode(encoding, errors="replace")
        report.repair("undecodable bytes replaced with U+FFFD", where)
        return text


def _record(
    rec: dict[str, Any], fields: Fields, where: str, default_id: str, report: ReadReport
) -> Document | None:
    """Turn one record into a Document, or None (dropped and counted) if it is empty."""
    report.read += 1

    def fail(msg: str) -> None:
        if fields.on_error == "raise":
            raise CorpusError(f"{where}: {msg}")
        report.drop(msg, where)

    if fields.text not in rec:
        what = "response" if fields.prompt else "text"
        return fail(f"no '{fields.text}' field (set fields.text to the {what} column)")
    text = rec[fields.text]
    if not isinstance(text, str):
        return fail(f"field '{fields.text}' is {type(text).__name__}, not text")
    domain = rec.get(fields.domain) if fields.domain else None
    domain = domain if domain not in (None, "") else fields.default_domain
    if domain is None:
        return fail(f"no '{fields.domain}' field and no fields.default_domain")
    if not text.strip():
        report.drop("empty text", where)
        return None
    prompt = None
    if fields.prompt:
        if bad := [f for f in fields.prompt if not isinstance(rec.get(f, ""), (str, type(None)))]:
            return fail(f"prompt field '{bad[0]}' is {type(rec[bad[0]]).__name__}, not text")
        prompt = "\n\n".join(rec[f].strip() for f in fields.prompt if (rec.get(f) or "").strip())
        if not prompt:
            return fail(f"no prompt: none of the fields {', '.join(fields.prompt)} has text")
    doc_id = rec.get(fields.id) if fields.id else None
    sub = rec.get(fields.subdomain) if fields.subdomain else None
    report.kept += 1
    return Document(
        id=str(doc_id) if doc_id not in (None, "") else default_id,
        text=text,
        domain=str(domain),
        subdomain=None if sub in (None, "") else str(sub),
        prompt=prompt,
    )


@READERS.register("jsonl")
def read_jsonl(path: str | Path, fields: Fields, report: ReadReport) -> Iterator[Document]:
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: no such file")
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            if not raw.strip():
                continue
            line = _decode(raw, fields.encoding, where, report)
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                if fields.on_error == "raise":
                    raise CorpusError(
                        f"{where}: malformed JSON: {e.msg} (column {e.colno})"
                    ) from None
                report.read += 1
                report.drop("malformed JSON", where)
                continue
            if not isinstance(rec, dict):
                if fields.on_error == "raise":
                    raise CorpusError(f"{where}: expected a JSON object, got {type(rec).__name__}")
                report.read += 1
                report.drop("not a JSON object", where)
                continue
            doc = _record(rec, fields, where, f"{path.name}:{lineno}", report)
            if doc is not None:
                yield doc


@READERS.register("parquet")
def read_parquet(path: str | Path, fields: Fields, report: ReadReport) -> Iterator[Document]:
    import pyarrow.parquet as pq

    path = Path(path)
    files = sorted(path.glob("**/*.parquet")) if path.is_dir() else [path]
    if not files or not files[0].exists():
        raise CorpusError(f"{path}: no Parquet files found")
    for file in files:
        try:
            pf = pq.ParquetFile(file)
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise CorpusError(f"{file}: not a readable Parquet file ({e})") from e
        row = 0
        for batch in pf.iter_batches(batch_size=4096):
            for rec in batch.to_pylist():
                doc = _record(rec, fields, f"{file}:row {row}", f"{file.name}:{row}", report)
                row += 1
                if doc is not None:
                    yield doc


@READERS.register("textdir")
def read_text_dir(root: str | Path, fields: Fields, report: ReadReport) -> Iterator[Document]:
    """``root/<domain>/[<subdomain>/...]/<file>``: the first folder is the domain, the rest the
    subdomain; the id is the path relative to ``root``. Hidden files are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: not a directory")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if len(rel.parts) < 2:
            report.read += 1
            report.drop("file directly under the root (no domain folder)", str(path))
            continue
        text = _decode(path.read_bytes(), fields.encoding, str(path), report)
        sub = "/".join(rel.parts[1:-1]) or None
        rec = {"text": text, "domain": rel.parts[0], "subdomain": sub, "id": rel.as_posix()}
        doc = _record(
            rec,
            Fields(encoding=fields.encoding, on_error=fields.on_error),
            str(path),
            rel.as_posix(),
            report,
        )
        if doc is not None:
            yield doc


@READERS.register("hf")
def read_hf(source: Any, fields: Fields, report: ReadReport) -> Iterator[Document]:
    """A ``datasets.Dataset`` / ``DatasetDict`` object, or a ``save_to_disk`` folder path."""
    try:
        import datasets
    except ImportError as e:
        raise ImportError(
            "reading Hugging Face datasets needs the 'hf' extra: pip install 'domix[hf]'"
        ) from e
    ds = source
    if isinstance(source, (str, Path)):
        if not Path(source).exists():
            raise CorpusError(f"{source}: no such dataset folder (made with Dataset.save_to_disk)")
        ds = datasets.load_from_disk(str(source))
    parts = ds.items() if isinstance(ds, datasets.DatasetDict) else [("", ds)]
    for split, part in parts:
        missing = [c for c in (fields.text,) if c not in part.column_names]
        if missing:
            raise CorpusError(
                f"dataset{'[' + split + ']' if split else ''} has no column {missing[0]!r}; columns: {part.column_names}"
            )
        for i, rec in enumerate(part):
            where = f"dataset{'[' + split + ']' if split else ''} row {i}"
            doc = _record(rec, fields, where, f"{split + ':' if split else ''}{i}", report)
            if doc is not None:
                yield doc

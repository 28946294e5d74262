"""The corpus artifact: one Parquet file of documents plus a manifest with its fingerprint.

    <dir>/corpus.parquet   id, text, domain, subdomain, split   (in input order)
                           + prompt, in a prompt/response corpus (text is then the response)
    <dir>/manifest.json    name, fingerprint, split settings, summary per domain and sub-domain,
                           the read report (what was read, repaired, dropped and why)

The manifest is written last, so a folder without one is an unfinished build. The fingerprint is a
content hash of every row; artifacts built from a corpus (tokenizer, token store, embeddings,
clusters, checkpoints) store it and refuse to mix with a different corpus.
"""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from .. import io
from ..config import Config
from .document import CorpusError, Document, ReadReport
from .split import SPLITS, assign_split

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("domain", pa.string()),
        ("subdomain", pa.string()),
        ("split", pa.string()),
    ]
)
RECORDS_SCHEMA = SCHEMA.append(pa.field("prompt", pa.string()))


@dataclass
class SplitConfig(Config):
    """How documents are split by a hash of their id, and what to do with tiny domains."""

    validation_fraction: float = 0.05
    test_fraction: float = 0.05
    salt: str = ""
    min_docs: int = 1  # a domain needs this many training and validation documents
    small_domains: Literal["error", "drop"] = "error"

    def validate(self) -> None:
        if not (0 < self.validation_fraction < 1 and 0 <= self.test_fraction < 1):
            raise CorpusError(
                "split fractions must lie in (0, 1) for validation and [0, 1) for test"
            )
        if self.validation_fraction + self.test_fraction >= 1:
            raise CorpusError(
                "validation_fraction + test_fraction must leave room for training data"
            )


class Corpus:
    """A built corpus on disk. ``Corpus.open("demo")`` finds it in the cache by name."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not manifest.exists():
            hint = (
                " (an interrupted build? run it again)"
                if (self.path / "corpus.parquet").exists()
                else ""
            )
            raise CorpusError(f"{self.path}: not a built corpus, no manifest.json{hint}")
        self.manifest: dict[str, Any] = io.read_json(manifest)

    @classmethod
    def open(cls, ref: str | Path) -> Corpus:
        path = Path(ref)
        if (path / "manifest.json").exists():
            return cls(path)
        cached = io.cache_dir() / "corpora" / str(ref)
        if (cached / "manifest.json").exists():
            return cls(cached)
        raise CorpusError(
            f"no corpus '{ref}': not a corpus folder, and not built in {cached.parent}. "
            f"Build it with `domix corpus build {ref}` (built-in: demo, extended) or "
            f"`domix corpus build --from FILE --name NAME`."
        )

    name = property(lambda self: self.manifest["name"])
    records = property(lambda self: bool(self.manifest.get("records")))  # prompt/response corpus
    fingerprint = property(lambda self: self.manifest["fingerprint"])
    num_docs = property(lambda self: self.manifest["num_docs"])
    parquet_path = property(lambda self: self.path / "corpus.parquet")

    @property
    def domains(self) -> list[str]:
        return sorted(self.manifest["summary"])

    @property
    def report(self) -> ReadReport:
        return ReadReport.from_dict(self.manifest["report"])

    def read(self, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.parquet_path, columns=columns)

    def iter_batches(
        self, columns: list[str] | None = None, batch_size: int = 8192, start_row: int = 0
    ) -> Iterator[pa.RecordBatch]:
        """Record batches of exactly ``batch_size`` rows (the last may be shorter), from corpus row
        ``start_row`` on.

        One Parquet reader per row group: a single ``ParquetFile.iter_batches`` over the whole file
        keeps buffers of every row group it has read (about 0.8 KB a document of text, measured),
        so its memory would grow with the corpus; a reader per row group keeps it flat.
        """
        pf = pq.ParquetFile(self.parquet_path)
        offset, pending = 0, None
        for g in range(pf.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            skip, offset = max(start_row - offset, 0), offset + n
            if skip >= n:
                continue
            for batch in pf.iter_batches(batch_size=batch_size, row_groups=[g], columns=columns):
                if skip:
                    cut = min(skip, batch.num_rows)
                    batch, skip = batch.slice(cut), skip - cut
                    if batch.num_rows == 0:
                        continue
                pending = batch if pending is None else _concat(pending, batch)
                while pending is not None and pending.num_rows >= batch_size:
                    yield pending.slice(0, batch_size)
                    rest = pending.slice(batch_size)
                    pending = rest if rest.num_rows else None
        if pending is not None:
            yield pending

    def add_to_manifest(self, **entries: Any) -> None:
        self.manifest.update(entries)
        io.write_json(self.path / "manifest.json", self.manifest)

    def __repr__(self) -> str:
        return f"Corpus({self.name!r}, {self.num_docs:,} docs, {len(self.domains)} domains, {self.fingerprint[:10]})"


def write_corpus(
    documents: Iterable[Document],
    out_dir: str | Path,
    name: str,
    report: ReadReport,
    split: SplitConfig | None = None,
    sources: dict[str, Any] | None = None,
    batch_rows: int = 4096,
    records: bool = False,
) -> Corpus:
    """Validate, split and store documents as a corpus artifact (atomically: manifest last).

    ``records``: a prompt/response corpus; every document carries its prompt (stored in a
    ``prompt`` column and hashed into the fingerprint).

    Empty (whitespace-only) texts are dropped and counted; duplicate ids are an error. A domain with
    fewer than ``split.min_docs`` training or validation
    documents is an error naming the domain, or with ``small_domains="drop"`` is dropped and counted.
    """
    split = split or SplitConfig()
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    seen: set[str] = set()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    raw_path = out_dir / ".raw.parquet"
    schema = RECORDS_SCHEMA if records else SCHEMA
    with pq.ParquetWriter(raw_path, schema) as writer:
        rows: list[dict[str, Any]] = []
        for doc in documents:
            if not doc.text.strip():
                report.drop("empty text", doc.id)
                report.kept -= 1
                continue
            if doc.id in seen:
                raise CorpusError(
                    f"duplicate document id {doc.id!r} in domain {doc.domain!r}: ids must be unique "
                    "(or set fields.id to null so records are numbered by file and line)"
                )
            seen.add(doc.id)
            s = assign_split(doc.id, split.validation_fraction, split.test_fraction, split.salt)
            counts[doc.domain][s] += 1
            if records and doc.prompt is None:
                raise CorpusError(f"document {doc.id!r} has no prompt, in a prompt/response corpus")
            row = {"id": doc.id, "text": doc.text, "domain": doc.domain, "subdomain": doc.subdomain, "split": s}
            rows.append(row | {"prompt": doc.prompt} if records else row)
            if len(rows) >= batch_rows:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    if not seen:
        raise CorpusError(f"corpus '{name}': no documents were read ({'; '.join(report.lines())})")

    small = {d: c for d, c in counts.items() if min(c["train"], c["validation"]) < split.min_docs}
    if small and split.small_domains == "error":
        desc = "; ".join(
            f"'{d}' ({c['train']} train, {c['validation']} validation of {sum(c.values())})"
            for d, c in sorted(small.items())
        )
        raise CorpusError(
            f"domains too small to split with validation_fraction={split.validation_fraction} "
            f"and min_docs={split.min_docs}: {desc}. Add documents, raise validation_fraction, "
            'or drop them (--drop-small-domains; small_domains="drop" in SplitConfig), which counts them in the report.'
        )
    for d, c in small.items():
        report.drop("domain too small to split", d, sum(c.values()))
        report.kept -= sum(c.values())

    final = out_dir / "corpus.parquet"
    hasher = io.Hasher()
    summary: dict[str, dict[str, Any]] = {}
    with io.atomic_path(final) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for batch in pq.ParquetFile(raw_path).iter_batches(batch_size=batch_rows):
            rows = [r for r in batch.to_pylist() if r["domain"] not in small]
            for r in rows:
                hasher.update(r["id"], r["text"], r["domain"], r["subdomain"], r["split"])
                if records:
                    hasher.update(r["prompt"])
                _count(summary, r)
            if rows:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    raw_path.unlink()
    if not summary:
        raise CorpusError(f"corpus '{name}': every domain was too small to split")
    n_docs = sum(s["docs"] for s in summary.values())
    manifest = {
        "name": name,
        "fingerprint": hasher.hexdigest(),
        "num_docs": n_docs,
        "split": split.to_dict(),
        "docs_per_split": {s: sum(v["splits"].get(s, 0) for v in summary.values()) for s in SPLITS},
        "summary": dict(sorted(summary.items())),
        "report": report.to_dict(),
        "sources": sources or {},
    } | ({"records": True} if records else {})
    io.write_json(out_dir / "manifest.json", manifest)
    return Corpus(out_dir)


def _count(summary: dict[str, dict[str, Any]], row: dict[str, Any]) -> None:
    d = summary.setdefault(row["domain"], {"docs": 0, "chars": 0, "splits": {}, "subdomains": {}})
    n = len(row["text"])
    d["docs"] += 1
    d["chars"] += n
    d["splits"][row["split"]] = d["splits"].get(row["split"], 0) + 1
    sub = d["subdomains"].setdefault(row["subdomain"] or "-", {"docs": 0, "chars": 0})
    sub["docs"] += 1
    sub["chars"] += n


def _concat(a: pa.RecordBatch, b: pa.RecordBatch) -> pa.RecordBatch:
    return pa.Table.from_batches([a, b]).combine_chunks().to_batches()[0]

"""Helpers shared by the built-in sources: chunking into documents, decoding, deterministic caps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..chunk import chunk_text
from ..document import Document, ReadReport
from ..split import id_unit

SHORT = "chunk under 200 characters"


def chunks(
    text: str, base_id: str, domain: str, sub: str | None, report: ReadReport
) -> Iterator[Document]:
    """Documents ``<base_id>#<i>`` from ~2,000-character chunks; shorter leftovers are counted."""
    kept, short = chunk_text(text)
    if short:
        report.drop(SHORT, base_id, short)
    for i, chunk in enumerate(kept):
        yield Document(id=f"{base_id}#{i}", text=chunk, domain=domain, subdomain=sub)


def decode(raw: bytes, where: str, report: ReadReport) -> str:
    """UTF-8, else Windows-1252 (curly quotes as bytes 0x80-0x9f), else latin-1; repairs are counted."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp1252")
        report.repair("not UTF-8, decoded as Windows-1252", where)
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        report.repair("not UTF-8, decoded as latin-1", where)
    return text


def capped(
    docs: Iterable[Document], cap_chars: int, source: str, report: ReadReport, dedupe: bool = False
) -> Iterator[Document]:
    """Keep documents in a deterministic hash order until ``cap_chars`` characters; drop (and count)
    the rest and, with ``dedupe``, exact duplicate texts. Kept documents come out in source order."""
    docs = list(docs)
    keep: set[str] = set()
    seen: set[str] = set()
    total = 0
    for doc in sorted(docs, key=lambda d: id_unit(d.id, source)):
        if dedupe and doc.text in seen:
            report.drop("duplicate text", doc.id)
        elif total >= cap_chars:
            report.drop(f"over the ~{cap_chars // 1_000_000} MB cap of the {source} source", doc.id)
        else:
            keep.add(doc.id)
            seen.add(doc.text)
            total += len(doc.text)
    return (doc for doc in docs if doc.id in keep)

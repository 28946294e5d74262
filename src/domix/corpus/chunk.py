"""Chunk long texts on paragraph boundaries (DATA.md: ~2,000 characters, drop chunks < ~200)."""

from __future__ import annotations

import re
from collections.abc import Iterator

_PARAGRAPH = re.compile(r"\n\s*\n")


def chunk_text(text: str, max_chars: int = 2000, min_chars: int = 200) -> tuple[list[str], int]:
    """Greedily pack paragraphs into chunks of at most ``max_chars``.

    A paragraph longer than ``max_chars`` is split on line boundaries, and a line longer than that
    is cut hard. Returns the chunks of at least ``min_chars`` characters and how many shorter
    chunks were dropped (callers record them in their ReadReport).
    """
    chunks: list[str] = []
    buf: list[str] = []
    size = 0
    for piece in _pieces(text, max_chars):
        if buf and size + len(piece) + 2 > max_chars:
            chunks.append("\n\n".join(buf))
            buf, size = [], 0
        buf.append(piece)
        size += len(piece) + 2
    if buf:
        chunks.append("\n\n".join(buf))
    kept = [c for c in chunks if len(c) >= min_chars]
    return kept, len(chunks) - len(kept)


def _pieces(text: str, max_chars: int) -> Iterator[str]:
    for para in _PARAGRAPH.split(text):
        para = para.strip("\n")
        if not para.strip():
            continue
        if len(para) <= max_chars:
            yield para
            continue
        line_buf = ""
        for line in para.split("\n"):
            while len(line) > max_chars:
                if line_buf:
                    yield line_buf
                    line_buf = ""
                yield line[:max_chars]
                line = line[max_chars:]
            if line_buf and len(line_buf) + len(line) + 1 > max_chars:
                yield line_buf
                line_buf = line
            else:
                line_buf = f"{line_buf}\n{line}" if line_buf else line
        if line_buf.strip():
            yield line_buf

"""Corpora: documents with original domain labels, readers, built-in corpora, the Parquet artifact."""

from .builtin import build_corpus, open_corpus
from .document import CorpusError, Document, ReadReport
from .readers import Fields, read
from .store import Corpus, SplitConfig, write_corpus

__all__ = [
    "Corpus",
    "CorpusError",
    "Document",
    "Fields",
    "ReadReport",
    "SplitConfig",
    "build_corpus",
    "open_corpus",
    "read",
    "write_corpus",
]

"""A document and the account of everything read, repaired or dropped while reading a corpus."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class CorpusError(ValueError):
    """Bad corpus input; the message names the file, line or field and what to do."""


@dataclass(slots=True)
class Document:
    id: str
    text: str  # the document; in a prompt/response corpus, the response
    domain: str
    subdomain: str | None = None
    prompt: str | None = None  # prompt/response corpora only: the prompt (see readers.Fields.prompt)


@dataclass
class ReadReport:
    """Counts of what was read, repaired and dropped, with a few example locations per reason.

    Nothing a reader skips goes unrecorded: ``domix corpus info`` prints this report.
    """

    read: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 5

    def drop(self, reason: str, where: str, n: int = 1) -> None:
        self.dropped[reason] += n
        self._example(reason, where)

    def repair(self, reason: str, where: str, n: int = 1) -> None:
        self.repaired[reason] += n
        self._example(reason, where)

    def _example(self, reason: str, where: str) -> None:
        ex = self.examples.setdefault(reason, [])
        if len(ex) < self.max_examples:
            ex.append(where)

    def merge(self, other: ReadReport) -> None:
        self.read += other.read
        self.kept += other.kept
        self.dropped.update(other.dropped)
        self.repaired.update(other.repaired)
        for reason, ex in other.examples.items():
            for where in ex:
                self._example(reason, where)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "kept": self.kept,
            "dropped": dict(self.dropped),
            "repaired": dict(self.repaired),
            "examples": self.examples,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReadReport:
        return cls(
            read=d.get("read", 0),
            kept=d.get("kept", 0),
            dropped=Counter(d.get("dropped", {})),
            repaired=Counter(d.get("repaired", {})),
            examples=d.get("examples", {}),
        )

    def lines(self) -> list[str]:
        out = [f"read {self.read:,} records, kept {self.kept:,} documents"]
        for reason, n in sorted(self.dropped.items()):
            out.append(
                f"dropped {n:,}: {reason}  (e.g. {', '.join(self.examples.get(reason, [])[:3])})"
            )
        for reason, n in sorted(self.repaired.items()):
            out.append(
                f"repaired {n:,}: {reason}  (e.g. {', '.join(self.examples.get(reason, [])[:3])})"
            )
        return out

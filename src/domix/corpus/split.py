"""Deterministic train / validation / test split by a hash of the document id.

The split of a document depends on its id (and a salt) alone: adding or removing other documents,
reordering the input or reading it on another machine never moves a document between splits.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "validation", "test")


def id_unit(doc_id: str, salt: str = "") -> float:
    """Map an id to a uniform number in [0, 1) with BLAKE2b."""
    digest = hashlib.blake2b(f"{salt}\x00{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def assign_split(
    doc_id: str, validation_fraction: float, test_fraction: float, salt: str = ""
) -> str:
    u = id_unit(doc_id, salt)
    if u < test_fraction:
        return "test"
    if u < test_fraction + validation_fraction:
        return "validation"
    return "train"

"""Fail points for the kill-and-resume tests: ``DOMIX_FAULT=<point>:<n>`` SIGKILLs this process the
n-th time it reaches ``point(<point>)``, so a test can stop a run at an exact moment (inside a
checkpoint write, after a given step) and check that resuming loses nothing.

Unset (always, outside those tests) a point costs one comparison. The points:

- ``step``: a training step has finished (its state is not saved yet);
- ``checkpoint_written``: a checkpoint is complete in its temporary file, not yet renamed;
- ``checkpoint_renamed``: a checkpoint is in place, older ones not yet pruned;
- ``embed_chunk_written``: a chunk of embeddings is in the cache file, not yet recorded as done;
- ``embed_chunk_committed``: the chunk is recorded as done (``progress.json``).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_SPEC = os.environ.get("DOMIX_FAULT") or None
_hits: Counter[str] = Counter()


def point(name: str) -> None:
    if _SPEC is None:
        return
    want, _, n = _SPEC.rpartition(":")
    if want == name:
        _hits[name] += 1
        if _hits[name] == int(n):
            os.kill(os.getpid(), signal.SIGKILL)

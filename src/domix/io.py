"""Small filesystem helpers shared by every artifact domix writes.

Every artifact (corpus, tokenizer, token store, checkpoint, report) is written atomically: to a
temporary name in the same directory, then renamed, so an interrupted job never leaves a file that
looks finished but is not. Artifacts are keyed by content fingerprints, never by timestamps.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def cache_dir() -> Path:
    """Root of domix's cache: ``$DOMIX_CACHE`` or ``~/.cache/domix``."""
    root = os.environ.get("DOMIX_CACHE") or Path.home() / ".cache" / "domix"
    return Path(root).expanduser()


def downloads_dir() -> Path:
    """Where fetched source archives are kept: ``$DOMIX_DOWNLOADS`` or ``<cache>/downloads``.

    Kept apart from built artifacts so a test session with a fresh cache need not fetch again.
    """
    root = os.environ.get("DOMIX_DOWNLOADS") or cache_dir() / "downloads"
    return Path(root).expanduser()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def reserved_memmap(path: Path, dtype: Any, shape: tuple[int, ...]) -> np.memmap:
    """A writable ``np.memmap`` over a new file whose disk blocks are reserved before mapping.

    A plain ``mode="w+"`` memmap makes a sparse file: on a full disk the first write to an
    unbacked page kills the process with SIGBUS (no traceback, nothing cleaned up). Reserving the
    blocks with ``posix_fallocate`` turns that into an ``OSError`` (ENOSPC) naming the file, which
    ``atomic_path`` then cleans up.
    """
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:  # macOS has no posix_fallocate: a sparse file there, as np.memmap's own w+ makes
        reserve = getattr(os, "posix_fallocate", lambda fd, offset, n: os.ftruncate(fd, offset + n))
        reserve(fd, 0, max(nbytes, 1))
    except OSError as e:
        raise OSError(e.errno, f"cannot reserve {nbytes / 2**20:.1f} MiB for {path}: {e.strerror}") from e
    finally:
        os.close(fd)
    return np.memmap(path, dtype=dtype, mode="r+", shape=shape)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class Hasher:
    """Streaming content hash (BLAKE2b) with unambiguous field framing."""

    def __init__(self) -> None:
        self._h = hashlib.blake2b(digest_size=16)

    def update(self, *fields: str | bytes | int | float | None) -> Hasher:
        for f in fields:
            b = f if isinstance(f, bytes) else repr(f).encode("utf-8")
            self._h.update(len(b).to_bytes(8, "little"))
            self._h.update(b)
        return self

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def fingerprint(*fields: str | bytes | int | float | None) -> str:
    return Hasher().update(*fields).hexdigest()


def file_fingerprint(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(ln.split(":", 1)[1].split()) for ln in f if ln.startswith("flags")), set())
    except OSError:
        return set()


SPEED_FLAGS = ("amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx512_fp16")


def speed_flags() -> list[str]:
    """The CPU flags that change domix's speed (bf16/int8 matrix units), for every measured figure."""
    flags = cpu_flags()
    return [f for f in SPEED_FLAGS if f in flags]

"""The extended corpus adds five domains read from Debian packages, fetched (never installed) with
``apt-get download`` and unpacked with ``dpkg-deb -x`` into the downloads folder (DATA.md).

| domain       | package                | what becomes a document                         | sub-domain              |
|--------------|------------------------|-------------------------------------------------|-------------------------|
| techdocs     | python3.11-doc         | reST sources of the Python documentation        | library, reference, ... |
| manpages     | manpages, manpages-dev | pages rendered to plain text by mandoc          | man1 ... man8           |
| gocode       | golang-1.19-src        | non-test Go sources, capped at ~13 MB           | top-level package       |
| encyclopedia | dict-foldoc            | one FOLDOC entry (dictd format)                 | first <topic> tag       |
| dictionary   | dict-gcide             | GCIDE entries packed into ~2,000-character docs | gcide                   |

Texts are chunked like the demo sources (~2,000 characters, chunks under 200 dropped and counted).
Man pages are rendered by ``mandoc -T utf8`` (Debian's ``mandoc``: the one on ``PATH``, else the package
fetched like the sources above), with the overstrike, the page's header and footer lines and the
seven-column body margin removed. Man pages that only redirect (``.so``) or are symlinks to another
page are dropped and counted; so
are dictd meta entries (``00-database-*``, ``00-gcide-*``) and headwords that index an already-read
definition. Ids are stable: ``<domain>/<path>#<chunk>`` for files, ``<domain>/<headword>@<offset>#<chunk>``
for dictd entries (the offset of the first entry in the decompressed ``.dict.dz``).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ... import io
from ..builtin import SOURCES
from ..document import CorpusError, Document, ReadReport
from ._common import capped, chunks, decode

GOCODE_CAP_CHARS = 13_000_000
DICTIONARY_CAP_CHARS = 10_000_000
COMPLETE = ".complete"  # written last into an unpacked package: its absence means "fetch again"
_apt_updated = False


# --- fetching -------------------------------------------------------------------------------------


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise CorpusError(
            f"`{cmd[0]}` not found: the extended corpus needs a Debian-like system"
        ) from e
    if proc.returncode != 0:
        raise CorpusError(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    return proc


def debian_package(name: str) -> Path:
    """The unpacked root folder of a Debian package, fetched once into ``<downloads>/debian/<name>``."""
    global _apt_updated
    root = io.downloads_dir() / "debian"
    dest = root / name
    if (dest / COMPLETE).exists():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        try:
            _run(["apt-get", "download", name], cwd=tmp)
        except CorpusError:
            if _apt_updated:
                raise
            _apt_updated = True  # most likely no package lists yet: update them once and retry
            _run(["apt-get", "update"])
            _run(["apt-get", "download", name], cwd=tmp)
        debs = sorted(tmp.glob("*.deb"))
        if len(debs) != 1:
            raise CorpusError(f"`apt-get download {name}` left {len(debs)} .deb files in {tmp}")
        _run(["dpkg-deb", "-x", str(debs[0]), str(tmp / "root")])
        (tmp / "root" / COMPLETE).write_text(debs[0].name + "\n")
        if (dest / COMPLETE).exists():  # another process finished first
            return dest
        if dest.exists():  # left by an interrupted fetch
            shutil.rmtree(dest)
        os.replace(tmp / "root", dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# --- man pages -----------------------------------------------------------------------------------

MAN_MARGIN = 7  # mandoc's left margin for man(7) body text (its -O indent applies to mdoc only)
MAN_WIDTH = 80  # columns, as in a terminal; filled paragraphs wrap there
_SO = re.compile(r"\.so\s+\S+")
_COMMENT_LINE = re.compile(r"[.']\s*\\\"")


def is_so_redirect(text: str) -> bool:
    """True for a page whose only request is ``.so <other page>`` (comments and blanks aside)."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not _COMMENT_LINE.match(ln)]
    return len(lines) == 1 and _SO.fullmatch(lines[0]) is not None


def mandoc() -> str:
    """The mandoc binary: the one on PATH, else Debian's package fetched into the downloads folder."""
    found = shutil.which("mandoc")
    if found:
        return found
    try:
        binary = debian_package("mandoc") / "usr/bin/mandoc"
    except CorpusError as e:
        raise CorpusError(
            "man pages are rendered by mandoc, which is not installed and could not be fetched: "
            f"install Debian's package (apt-get install mandoc).\n{e}"
        ) from e
    if not binary.exists():
        raise CorpusError(f"Debian's mandoc package has no {binary}: apt-get install mandoc")
    return str(binary)


def render_man(source: str, where: str, report: ReadReport) -> str | None:
    """Plain text of a man(7) page as mandoc renders it for an 80-column terminal, without the
    overstrike, header, footer and body margin; None (dropped and counted) when it renders nothing."""
    proc = subprocess.run(
        [mandoc(), "-T", "utf8", "-K", "utf-8", "-man", "-O", f"width={MAN_WIDTH}"],
        input=source.encode(),
        capture_output=True,
    )
    lines = re.sub(".\b", "", proc.stdout.decode()).rstrip().splitlines()  # drop the overstrike
    body = lines[1:-1]  # the header (NAME(section) title NAME(section)) and footer (source, date)
    body = [ln[min(MAN_MARGIN, len(ln) - len(ln.lstrip(" "))) :].rstrip() for ln in body]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(body)).strip()
    if proc.returncode > 4 or not text:  # 5 and 6: bad arguments or a system error
        report.drop("man page mandoc rendered nothing", where)
        return None
    return text


# --- dictd (FOLDOC, GCIDE) ------------------------------------------------------------------------

_B64 = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}
_TOPIC = re.compile(
    r"(?m)^[ \t]*(?:\d+\.\s+)?<([A-Za-z][A-Za-z0-9 .+/-]*)[,>]"
)  # "<language, humour> ..."


def dictd_number(digits: str) -> int:
    """Decode a dictd index number: base-64 digits (A-Z a-z 0-9 + /), most significant first."""
    value = 0
    for c in digits:
        if c not in _B64:
            raise ValueError(f"not a dictd base-64 digit: {c!r} in {digits!r}")
        value = value * 64 + _B64[c]
    return value


def dictd_entries(index: Path, data: Path, report: ReadReport) -> Iterator[tuple[str, int, str]]:
    """``(headword, offset, text)`` per definition, in index order; meta entries (``00-...``) and
    headwords pointing at an already-read definition are dropped and counted."""
    raw = gzip.decompress(data.read_bytes())
    seen: set[tuple[int, int]] = set()
    for lineno, line in enumerate(decode(index.read_bytes(), str(index), report).splitlines(), 1):
        if not line.strip():
            continue
        report.read += 1
        where = f"{index.name}:{lineno}"
        try:
            head, off, size = line.split("\t")
            span = (dictd_number(off), dictd_number(size))
        except ValueError:
            report.drop("malformed dictd index line", where)
            continue
        if head.startswith("00-"):
            report.drop("dictd meta entry (00-database-*)", where)
        elif span in seen:
            report.drop("dictd headword for an already-read definition", where)
        elif span[0] + span[1] > len(raw):
            report.drop("dictd index entry past the end of the data", where)
        else:
            seen.add(span)
            text = decode(raw[span[0] : span[0] + span[1]], where, report)
            yield head, span[0], text.strip()


def _dictd_files(package: str, name: str) -> tuple[Path, Path]:
    folder = debian_package(package) / "usr/share/dictd"
    index, data = folder / f"{name}.index", folder / f"{name}.dict.dz"
    if not (index.exists() and data.exists()):
        raise CorpusError(f"package {package} has no {index.name} and {data.name} in {folder}")
    return index, data


def foldoc_topic(text: str) -> str:
    m = _TOPIC.search(text[:600])
    return m[1].strip() if m else "untagged"


def pack_entries(
    entries: Iterable[tuple[str, str]], max_chars: int = 2000
) -> Iterator[tuple[str, str]]:
    """Greedily pack ``(key, text)`` entries into ``(first key, joined text)`` groups of at most
    ``max_chars`` characters; an entry longer than that is a group of its own."""
    key, buf, size = "", [], 0
    for k, text in entries:
        if buf and size + len(text) + 2 > max_chars:
            yield key, "\n\n".join(buf)
            buf, size = [], 0
        if not buf:
            key = k
        buf.append(text)
        size += len(text) + 2
    if buf:
        yield key, "\n\n".join(buf)


# --- sources --------------------------------------------------------------------------------------


@SOURCES.register("techdocs")
def techdocs(report: ReadReport) -> Iterator[Document]:
    root = debian_package("python3.11-doc") / "usr/share/doc/python3.11/html/_sources"
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        report.read += 1
        sub = rel.parts[0] if len(rel.parts) > 1 else "top"
        text = decode(path.read_bytes(), str(path), report)
        yield from chunks(
            text, f"techdocs/{rel.as_posix().removesuffix('.txt')}", "techdocs", sub, report
        )


@SOURCES.register("manpages")
def manpages(report: ReadReport) -> Iterator[Document]:
    for package in ("manpages", "manpages-dev"):
        root = debian_package(package) / "usr/share/man"
        for path in sorted(root.glob("man*/*")):
            report.read += 1
            section, page = path.parent.name, path.name.removesuffix(".gz")
            where = f"{package}:{section}/{page}"
            if path.is_symlink():
                report.drop("man page alias (a symlink to another page)", where)
                continue
            raw = path.read_bytes()
            text = decode(gzip.decompress(raw) if path.suffix == ".gz" else raw, str(path), report)
            if is_so_redirect(text):
                report.drop("man page .so redirect to another page", where)
                continue
            rendered = render_man(text, where, report)
            if rendered is not None:
                yield from chunks(rendered, f"manpages/{section}/{page}", "manpages", section, report)


@SOURCES.register("gocode")
def gocode(report: ReadReport) -> Iterator[Document]:
    roots = sorted((debian_package("golang-1.19-src") / "usr/share").glob("go-*/src"))
    if not roots:
        raise CorpusError("package golang-1.19-src has no usr/share/go-*/src folder")
    docs: list[Document] = []
    for path in sorted(roots[0].rglob("*.go")):
        rel = path.relative_to(roots[0])
        if path.name.endswith("_test.go") or "testdata" in rel.parts:
            continue
        report.read += 1
        sub = rel.parts[0] if len(rel.parts) > 1 else "top"
        text = decode(path.read_bytes(), str(path), report)
        docs += chunks(text, f"gocode/{rel.as_posix()}", "gocode", sub, report)
    yield from capped(docs, GOCODE_CAP_CHARS, "gocode", report)


@SOURCES.register("encyclopedia")
def encyclopedia(report: ReadReport) -> Iterator[Document]:
    for head, offset, text in dictd_entries(*_dictd_files("dict-foldoc", "foldoc"), report):
        text = re.sub(r"(?m)^ {3}", "", text)  # FOLDOC indents each definition by three spaces
        yield from chunks(
            text, f"encyclopedia/{head}@{offset}", "encyclopedia", foldoc_topic(text), report
        )


@SOURCES.register("dictionary")
def dictionary(report: ReadReport) -> Iterator[Document]:
    """Tiny GCIDE entries packed in index order into ~2,000-character documents, capped at ~10 MB."""
    entries = (
        (f"{head}@{offset}", text)
        for head, offset, text in dictd_entries(*_dictd_files("dict-gcide", "gcide"), report)
    )
    docs: list[Document] = []
    for key, text in pack_entries(entries):
        docs += chunks(text, f"dictionary/{key}", "dictionary", "gcide", report)
    yield from capped(docs, DICTIONARY_CAP_CHARS, "dictionary", report)

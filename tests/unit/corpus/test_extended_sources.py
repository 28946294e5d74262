"""Pure helpers of the extended corpus sources: dictd decoding, man page rendering, package caching.

No network and no apt: Debian packages are replaced by small files built in tmp_path. Man pages are
rendered by mandoc (on PATH, e.g. from .ci/run, or fetched once like the corpus packages).
"""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest

from domix.corpus.builtin import BUILTIN, SOURCES
from domix.corpus.document import CorpusError, ReadReport
from domix.corpus.sources import extended as ext

DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def encode(n: int) -> str:
    out = ""
    while True:
        out = DIGITS[n % 64] + out
        n //= 64
        if not n:
            return out


def test_sources_are_registered():
    for name in ("techdocs", "manpages", "gocode", "encyclopedia", "dictionary"):
        assert name in SOURCES
        assert name in BUILTIN["extended"]


@pytest.mark.parametrize(
    "digits, value",
    [
        ("A", 0),
        ("B", 1),
        ("/", 63),
        ("BA", 64),
        ("Kj", 10 * 64 + 35),
        ("Gb9L", ((6 * 64 + 27) * 64 + 61) * 64 + 11),
    ],
)
def test_dictd_number(digits, value):
    assert ext.dictd_number(digits) == value


def test_dictd_number_round_trip_and_bad_digit():
    for n in (0, 5, 4095, 4096, 39_952_321):
        assert ext.dictd_number(encode(n)) == n
    with pytest.raises(ValueError):
        ext.dictd_number("A=")


def write_dictd(
    tmp_path: Path, entries: list[tuple[str, str]], extra_index: list[str] = ()
) -> tuple[Path, Path]:
    """Write ``name.index`` and ``name.dict.dz``; an entry whose text is None reuses the previous span."""
    data, lines, span = b"", [], None
    for head, text in entries:
        if text is not None:
            raw = text.encode("utf-8")
            span = (len(data), len(raw))
            data += raw
        lines.append(f"{head}\t{encode(span[0])}\t{encode(span[1])}")
    index, dz = tmp_path / "t.index", tmp_path / "t.dict.dz"
    index.write_text("\n".join(lines + list(extra_index)) + "\n", encoding="utf-8")
    dz.write_bytes(gzip.compress(data))
    return index, dz


def test_dictd_entries(tmp_path):
    index, dz = write_dictd(
        tmp_path,
        [
            ("00-database-short", "00-database-short\n   A test dictionary\n"),
            ("apple", "Apple\n\n   <food> A fruit.\n"),
            ("pomme", None),  # another headword for the same definition
            ("büro", "Büro\n\n   An office.\n"),
        ],
        extra_index=["broken line", f"far\t{encode(10_000)}\tB"],
    )
    report = ReadReport()
    got = list(ext.dictd_entries(index, dz, report))
    assert [(h, t) for h, _, t in got] == [
        ("apple", "Apple\n\n   <food> A fruit."),
        ("büro", "Büro\n\n   An office."),
    ]
    assert got[0][1] == len("00-database-short\n   A test dictionary\n")
    assert report.read == 6
    assert report.dropped == {
        "dictd meta entry (00-database-*)": 1,
        "dictd headword for an already-read definition": 1,
        "malformed dictd index line": 1,
        "dictd index entry past the end of the data": 1,
    }


def test_foldoc_topic():
    assert ext.foldoc_topic("Foo\n\n<language, humour> A daft language.") == "language"
    assert ext.foldoc_topic("hash\n\n1. <character> {hash character}.") == "character"
    assert (
        ext.foldoc_topic("ISMAP\n\nAn attribute of the tag <IMG> and mail <a@b.org>.") == "untagged"
    )


def test_pack_entries():
    entries = [(f"k{i}", "x" * 700) for i in range(5)] + [("big", "y" * 2500), ("last", "z" * 10)]
    groups = list(ext.pack_entries(entries, max_chars=2000))
    assert [k for k, _ in groups] == ["k0", "k2", "k4", "big", "last"]
    assert groups[0][1] == "x" * 700 + "\n\n" + "x" * 700
    assert all(len(t) <= 2000 for k, t in groups if k != "big")


MAN_PAGE = r""".\" Copyright (c) a comment that must vanish
.TH FOO 3 2023-01-01 "Linux man-pages"
.ds Q \(lqquoted\(rq
.SH NAME
foo, bar \- do things \(em quickly
.SH SYNOPSIS
.nf
.B #include <foo.h>
.PP
.BI "int foo(const char *" path ", int " flags );
.fi
.SH DESCRIPTION
The
.BR foo ()
function reads
.IR path .
It is \fBbold\fP and \fIitalic\fR, costs 5\ \[Eu] or \*Q.
.\" another comment
A second sentence.   \" trailing comment
.PP
.TP
.B \-a
All of them:
.RS
.IP \[bu] 2
first item
.IP \[bu]
second item
.RE
.if t .B troff only
.if n nroff only
.ie '\(la'' .ds arrow <
.el .ds arrow >
Arrow \*[arrow].
.TS
tab(:);
l l.
Name:Value
_
T{
.B one
T}:1
.TE
.SH SEE ALSO
.BR bar (3),
.BR baz (7)
"""


def test_render_man():
    report = ReadReport()
    text = ext.render_man(MAN_PAGE, "test:man3/foo.3", report)
    assert "\b" not in text and "comment" not in text and "\\" not in text
    assert "FOO(3)" not in text and "2023" not in text  # header and footer lines are gone
    assert text.startswith(
        "NAME\nfoo, bar - do things — quickly\n\nSYNOPSIS\n#include <foo.h>\n\n"
        "int foo(const char *path, int flags);\n\nDESCRIPTION\nThe foo() function reads path."
    )
    assert "It is bold and italic, costs 5\xa0€ or\n“quoted”." in text  # filled at 80 columns
    assert "\n-a     All of them:\n\n       • first item\n\n       • second item\n" in text
    assert "troff only" not in text and "nroff only Arrow >." in text
    assert "Name   Value\n" in text and "\none    1\n" in text
    assert text.endswith("SEE ALSO\nbar(3), baz(7)")
    assert all(len(line) <= ext.MAN_WIDTH for line in text.splitlines())
    assert ext.render_man("", "test:empty.3", report) is None
    assert report.dropped == {"man page mandoc rendered nothing": 1}


def test_mandoc_fetched_when_not_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(ext.shutil, "which", lambda name: None)
    binary = tmp_path / "mandoc/usr/bin/mandoc"
    monkeypatch.setattr(ext, "debian_package", lambda name: tmp_path / name)
    with pytest.raises(CorpusError, match="apt-get install mandoc"):
        ext.mandoc()
    binary.parent.mkdir(parents=True)
    binary.write_text("")
    assert ext.mandoc() == str(binary)

    def unreachable(name):
        raise CorpusError("`apt-get download mandoc` failed")

    monkeypatch.setattr(ext, "debian_package", unreachable)
    with pytest.raises(CorpusError, match=r"not installed and could not be fetched.*apt-get install mandoc"):
        ext.mandoc()


def test_is_so_redirect():
    assert ext.is_so_redirect(".so man3/foo.3\n")
    assert ext.is_so_redirect('.\\" redirect\n\n.so man2/open.2\n')
    assert not ext.is_so_redirect(MAN_PAGE)
    assert not ext.is_so_redirect(".so man3/foo.3\n.SH NAME\nmore\n")
    assert not ext.is_so_redirect("Text that mentions .so files\n")


def fake_tools(monkeypatch, fail_extract: bool = False) -> list[list[str]]:
    calls: list[list[str]] = []

    def run(cmd, cwd=None):
        calls.append(cmd)
        if cmd[:2] == ["apt-get", "download"]:
            (cwd / f"{cmd[2]}_1.0_all.deb").write_bytes(b"deb")
        elif cmd[0] == "dpkg-deb":
            if fail_extract:
                raise CorpusError("`dpkg-deb -x` failed")
            (Path(cmd[3]) / "usr").mkdir(parents=True)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(ext, "_run", run)
    return calls


def test_debian_package_fetches_once_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("DOMIX_DOWNLOADS", str(tmp_path))
    calls = fake_tools(monkeypatch)
    root = ext.debian_package("pkg")
    assert root == tmp_path / "debian" / "pkg"
    assert (root / "usr").is_dir() and (root / ext.COMPLETE).exists()
    assert [p.name for p in (tmp_path / "debian").iterdir()] == ["pkg"]  # no temp folder left
    assert ext.debian_package("pkg") == root
    assert len(calls) == 2  # the second call is served from the cache


def test_debian_package_failure_leaves_nothing_finished(tmp_path, monkeypatch):
    monkeypatch.setenv("DOMIX_DOWNLOADS", str(tmp_path))
    fake_tools(monkeypatch, fail_extract=True)
    with pytest.raises(CorpusError):
        ext.debian_package("pkg")
    assert list((tmp_path / "debian").iterdir()) == []

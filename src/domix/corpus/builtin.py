"""Built-in corpora assembled from real text that ships offline (see shared/DATA.md).

A source is one registered function ``(report) -> Iterator[Document]`` in ``corpus/sources/``;
a built-in corpus is a list of sources. ``build_corpus("demo")`` writes the corpus artifact into
the cache, then trains the default tokenizer and tokenizes everything once, so the summary carries
token counts per domain and sub-domain and training starts without re-tokenizing.

    corpus = build_corpus("demo")                     # ~1 minute on 2 cores, cached afterwards
    corpus = build_corpus("demo", max_docs_per_domain=120)   # a capped slice, for tests
"""

from __future__ import annotations

import heapq
import importlib
import inspect
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

from .. import io
from ..registry import Registry
from .document import CorpusError, Document, ReadReport
from .split import id_unit
from .store import Corpus, SplitConfig, write_corpus

Source = Callable[[ReadReport], Iterator[Document]]
SOURCES: Registry[Source] = Registry("corpus source", package="domix.corpus.sources")

BUILTIN: dict[str, tuple[str, ...]] = {
    "demo": ("news", "math", "dialogue", "drama", "code"),
    "extended": (
        "news",
        "math",
        "dialogue",
        "drama",
        "code",
        "techdocs",
        "manpages",
        "gocode",
        "encyclopedia",
        "dictionary",
    ),
    # prompt/response records, one task a domain (sources/instruct.py)
    "instruct": ("instruct-qa", "instruct-math", "instruct-classify", "instruct-headline", "instruct-code"),
}
RECORDS = {"instruct"}  # built-in corpora of prompt/response records


def require(module: str, extra: str) -> ModuleType:
    """Import an optional data package, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise CorpusError(
            f"this corpus needs the package '{module}': pip install 'domix[{extra}]'"
        ) from e


def package_dir(module: str, extra: str) -> Path:
    return Path(require(module, extra).__file__).parent


def corpus_name(name: str, max_docs_per_domain: int | None) -> str:
    return name if max_docs_per_domain is None else f"{name}-cap{max_docs_per_domain}"


def open_corpus(ref: str | Path | Corpus, max_docs_per_domain: int | None = None, progress: bool = True) -> Corpus:
    """A Corpus, a corpus folder, a name in the cache, or a built-in name (built when missing)."""
    if isinstance(ref, Corpus):
        return ref
    if str(ref) in BUILTIN:
        return build_corpus(str(ref), max_docs_per_domain=max_docs_per_domain, progress=progress)
    return Corpus.open(ref)


def build_corpus(
    name: str,
    max_docs_per_domain: int | None = None,
    split: SplitConfig | None = None,
    out_dir: str | Path | None = None,
    force: bool = False,
    tokenize: bool = True,
    progress: bool = True,
) -> Corpus:
    """Build (or open, when already built) a built-in corpus in the cache."""
    if name not in BUILTIN:
        raise CorpusError(f"unknown built-in corpus '{name}'; built-in: {', '.join(BUILTIN)}")
    full = corpus_name(name, max_docs_per_domain)
    out = Path(out_dir) if out_dir else io.cache_dir() / "corpora" / full
    if (out / "manifest.json").exists() and not force:
        corpus = Corpus(out)
        built_by = corpus.manifest.get("sources", {}).get("code")
        if built_by is not None and built_by != source_fingerprint(name):
            cap = "" if max_docs_per_domain is None else f" --max-docs-per-domain {max_docs_per_domain}"
            warnings.warn(f"the cached built-in corpus '{full}' ({out}) was built by other source code than "
                          f"this domix's (corpus/sources/ changed since): `domix corpus build {name}{cap} "
                          "--force` rebuilds it", stacklevel=2)
        return corpus
    report = ReadReport()
    t0 = time.perf_counter()
    docs = _stream(BUILTIN[name], report, progress)
    if max_docs_per_domain is not None:
        docs = _cap(docs, max_docs_per_domain, report)
    corpus = write_corpus(
        docs,
        out,
        full,
        report,
        split,
        sources={
            "builtin": name,
            "sources": list(BUILTIN[name]),
            "max_docs_per_domain": max_docs_per_domain,
            "code": source_fingerprint(name),
        },
        records=name in RECORDS,
    )
    corpus.add_to_manifest(build_seconds={"read_and_write": round(time.perf_counter() - t0, 2)})
    if tokenize:
        from ..data.token_store import TokenStore
        from ..tokenizer import TokenizerConfig

        t1 = time.perf_counter()
        TokenStore.build(corpus, TokenizerConfig().build(corpus), progress=progress)
        corpus.add_to_manifest(
            build_seconds={
                **corpus.manifest["build_seconds"],
                "tokenizer_and_tokens": round(time.perf_counter() - t1, 2),
            }
        )
    return corpus


def source_fingerprint(name: str) -> str:
    """A hash of the source files that build a built-in corpus: a cached build made by other code is
    reported (not rebuilt on its own: a rebuild costs minutes and starts dependent runs over)."""
    files = sorted({inspect.getsourcefile(SOURCES.get(src)) for src in BUILTIN[name]})
    return io.fingerprint(*(Path(f).read_bytes() for f in files))


def _stream(sources: tuple[str, ...], report: ReadReport, progress: bool) -> Iterator[Document]:
    for src in sources:
        t = time.perf_counter()
        n = 0
        for doc in SOURCES.get(src)(report):
            report.kept += 1
            n += 1
            yield doc
        if progress:
            print(
                f"  source {src:<13} {n:>7,} documents  {time.perf_counter() - t:5.1f}s", flush=True
            )


def _cap(docs: Iterator[Document], cap: int, report: ReadReport) -> Iterator[Document]:
    """Keep a deterministic uniform sample of ``cap`` documents per domain (smallest id hashes)."""
    heaps: dict[str, list[tuple[float, int, Document]]] = {}
    for i, doc in enumerate(docs):
        heap = heaps.setdefault(doc.domain, [])
        item = (-id_unit(doc.id, "cap"), i, doc)
        if len(heap) < cap:
            heapq.heappush(heap, item)
        else:
            heapq.heappushpop(heap, item)
            report.drop(f"over max_docs_per_domain={cap}", doc.domain)
            report.kept -= 1
    for heap in heaps.values():
        yield from (doc for _, _, doc in sorted(heap, key=lambda t: t[1]))

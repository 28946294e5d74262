"""Peak memory of a streaming Regroup pass over a synthetic 1M-document corpus.

The corpus is the real demo corpus repeated with new ids (``<id>~r<n>``) until it holds N
documents, written with ``domix.corpus.write_corpus`` (so it is an ordinary corpus artifact,
about 1.5 GB of text at 1M documents). Each measurement runs ``regroup(corpus, k=10)`` with the
local engine (embed into a fresh on-disk cache, fit k-means on a 100k sample, assign everything,
write the report) in a fresh process, and reports that process's peak RSS (``VmHWM``).

- the hashing embedder (not semantic, ~5k docs/s) at N = 100k and 1M: does memory grow with N?
- the real model (all-MiniLM-L6-v2) at two small N, to show its footprint is flat too.

Memory does not grow with N because texts are read one Parquet row group at a time (a fresh
reader per row group: one reader over the whole file keeps buffers and grows ~0.8 KB a document)
in 1,024-row batches dropped after embedding; embeddings go to disk (float16) and are read back
in 16,384-row chunks for the fit sample and the assignment; the peak is set by the k-means fit on
the sample (``cluster.fit_sample`` = 100k x 384 float32 = 154 MB plus the backend's copies) and by
the model. What is O(N) is small: the assignment table (about 20 bytes a document), an 8-byte id
hash per document for the uniqueness check, a domain code per document for the report.

    python benchmarks/regroup_memory.py            # 100k and 1M hashing, 2k and 8k real model (~10 min)
    python benchmarks/regroup_memory.py --quick    # 100k hashing, 1k and 3k real model (~2 min)

Last line: ``peak_rss_mb_1m: <MB>`` (in --quick mode the 100k value stands in, and says so).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from domix import io  # noqa: E402
from domix.corpus import Corpus, Document, ReadReport, build_corpus, write_corpus  # noqa: E402


def synthetic(n: int) -> Corpus:
    """The demo corpus repeated with new ids up to ``n`` documents (built once, then cached)."""
    out = io.cache_dir() / "corpora" / f"synthetic-{n}"
    if (out / "manifest.json").exists():
        return Corpus(out)
    demo = build_corpus("demo", progress=False)

    def docs() -> Iterator[Document]:
        made, rep = 0, 0
        while True:
            for batch in demo.iter_batches(["id", "text", "domain", "subdomain"], 4096):
                for i, text, dom, sub in zip(*(c.to_pylist() for c in batch.columns)):
                    yield Document(f"{i}~r{rep}", text, dom, sub)
                    made += 1
                    if made == n:
                        return
            rep += 1

    t0 = time.perf_counter()
    corpus = write_corpus(docs(), out, f"synthetic-{n}", ReadReport(), sources={"from": "demo"})
    print(f"  built {corpus.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return corpus


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM (ru_maxrss would include the parent's
    memory at fork time, which Linux carries across exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(path: str, embedder: str) -> None:
    """Child process: one regroup pass, then a JSON line with peak RSS and timings."""
    from domix.regroup import RegroupConfig, regroup

    corpus = Corpus(path)
    rss0 = peak_rss_mb()
    with tempfile.TemporaryDirectory(dir=io.cache_dir()) as tmp:
        cfg = RegroupConfig.from_dict(
            {"k": 10, "embed": {"name": embedder}, "embed_cache": f"{tmp}/emb"}
        )
        t0 = time.perf_counter()
        res = regroup(corpus, cfg, name=f"mem-{embedder}", progress=False)
        secs = time.perf_counter() - t0
    peak = peak_rss_mb()
    shutil.rmtree(res.path, ignore_errors=True)
    print(
        json.dumps(
            {
                "rss_after_imports_mb": rss0,
                "peak_rss_mb": peak,
                "seconds": secs,
                "stages": res.meta["seconds"],
                "docs": corpus.num_docs,
            }
        )
    )


def measure(n: int, embedder: str) -> dict:
    subprocess.run([sys.executable, __file__, "--build", str(n)], check=True)
    path = io.cache_dir() / "corpora" / f"synthetic-{n}"
    cmd = [sys.executable, __file__, "--worker", str(path), "--embedder", embedder]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed:\n{proc.stderr[-3000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"{embedder:<22} {n:>9,} docs  peak RSS {r['peak_rss_mb']:7.0f} MB  "
        f"(after imports {r['rss_after_imports_mb']:5.0f} MB)  {r['seconds']:6.0f} s  "
        f"{r['docs'] / r['stages']['embed']:6.0f} docs/s embedding  stages {r['stages']}",
        flush=True,
    )
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--embedder", default="hashing", help=argparse.SUPPRESS)
    ap.add_argument("--build", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.embedder)
    if args.build:
        synthetic(args.build)
        return None
    hashing = [100_000] if args.quick else [100_000, 1_000_000]
    real = [1_000, 3_000] if args.quick else [2_000, 8_000]
    results = {n: measure(n, "hashing") for n in hashing}
    for n in real:
        measure(n, "sentence-transformers")
    if args.quick:
        print("(--quick: the 100k value below stands in for 1M)")
        print(f"peak_rss_mb_1m: {results[100_000]['peak_rss_mb']:.0f}")
    else:
        print(f"peak_rss_mb_1m: {results[1_000_000]['peak_rss_mb']:.0f}")


if __name__ == "__main__":
    main()

"""How well Regroup's clusters recover the original domains: NMI and purity, demo and extended.

Embeds each corpus with the default model (all-MiniLM-L6-v2, 128 tokens, cached on disk after
the first run), then k-means (spherical, faiss when installed, 3 restarts, seed 0) for k = the
number of original domains m, 2m, 50, and the silhouette-chosen k. Scores are on the training
documents, against the original domain labels.

    python benchmarks/regroup_quality.py            # demo + extended (~27 min cold, ~5 min warm)
    python benchmarks/regroup_quality.py --quick    # demo capped at 300 docs per domain (~1 min)

Last line: ``nmi_demo: <NMI at k = m on the demo corpus>``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from domix.corpus import build_corpus  # noqa: E402
from domix.regroup import RegroupConfig, regroup  # noqa: E402


def evaluate(name: str, cap: int | None, quick: bool) -> dict[int, dict]:
    corpus = build_corpus(name, max_docs_per_domain=cap, progress=False)
    m = len(corpus.domains)
    print(f"\n{corpus.name}: {corpus.num_docs:,} documents, {m} original domains")
    base = RegroupConfig()
    t0 = time.perf_counter()
    out = {}
    sweep = (
        ["choose_k.k_min=2", "choose_k.k_max=20", "choose_k.k_step=3"]
        if quick
        else [
            "choose_k.k_min=4",
            "choose_k.k_max=48",
            "choose_k.k_step=4",
        ]
    )
    settings = [str(m), str(2 * m), "auto"] if quick else [str(m), str(2 * m), "50", "auto"]
    print(f"{'k':>10} {'purity':>8} {'NMI':>7} {'seconds':>8}")
    for k in settings:
        cfg = base.merge([f"k={k}", *sweep])
        res = regroup(corpus, cfg, name=f"bench-{k}", progress=False)
        label = f"{res.k} (auto)" if k == "auto" else str(res.k)
        secs = sum(res.meta["seconds"].values())
        print(f"{label:>10} {res.meta['purity']:>8.3f} {res.meta['nmi']:>7.3f} {secs:>8.1f}")
        out[res.k if k != "auto" else -res.k] = res.meta
    print(f"  (first run includes embedding: {time.perf_counter() - t0:.0f} s in all)")
    return {**out, "m": m}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    demo = evaluate("demo", 300 if args.quick else None, args.quick)
    if not args.quick:
        ext = evaluate("extended", None, args.quick)
        print(f"nmi_extended: {ext[ext['m']]['nmi']:.3f}")
        print(f"purity_extended: {ext[ext['m']]['purity']:.3f}")
    print(f"purity_demo: {demo[demo['m']]['purity']:.3f}")
    print(f"nmi_demo: {demo[demo['m']]['nmi']:.3f}")


if __name__ == "__main__":
    main()

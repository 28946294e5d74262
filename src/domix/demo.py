"""``domix demo``: the README's main job, on the built-in demo corpus.

1. Builds the demo corpus (news, math, dialogue, drama, code; ~30 s the first time, then cached),
   by default a slice of 2,000 documents per domain (8.5k documents, 5.8M tokens), so that step 2
   takes ~3 minutes on 2 cores without AMX (MiniLM embeds ~56 documents/s there);
   ``--max-docs-per-domain 0`` uses the whole corpus (21k documents).
2. Regroups it (R&B step 1): MiniLM embeddings + k-means into ``k`` semantic domains (cached).
3. Trains the tiny GPT-2 (2 layers, d 128, context 128) at one token budget and seed, five runs:
   the 2 x 2 ablation R&B needs (stratified and R&B, each on the original and on the regrouped
   domains) plus proportional (natural) weights on the original domains.
4. Prints validation loss on the original domains (macro, token average, worst; per domain) and
   the effects of Regroup and of Balance separately, and writes ``table.md``, ``report.html`` and
   the figures. Rerunning reuses finished runs (each run resumes).

The demo is a one-seed ``domix compare`` (``compare/grid.py``) over these five runs.

    domix demo                          # ~9 minutes on 2 cores the first time
    domix demo --tokens 200000          # a quicker look
"""

from __future__ import annotations

from pathlib import Path

from .compare import CompareConfig, Comparison, run_compare, summary_text, write_outputs

DEMO_TOKENS = 393_216  # 192 steps of 16 x 128 tokens
DEMO_K = 10
DEMO_DOCS_PER_DOMAIN = 2000
DEMO_PARAMS = {"rnb": {"round_steps": 32}}  # R&B's K: 6 rounds in 192 steps
METHODS = ("stratified", "proportional@original", "rnb")


def run_demo(out_dir: str | Path = "runs/demo", tokens: int = DEMO_TOKENS, seed: int = 0, k: int = DEMO_K,
             methods: tuple[str, ...] = METHODS, progress: bool = True,
             max_docs_per_domain: int | None = DEMO_DOCS_PER_DOMAIN,
             params: dict[str, dict] = DEMO_PARAMS) -> Comparison:
    cfg = CompareConfig(corpus="demo", max_docs_per_domain=max_docs_per_domain, tokens=tokens, seeds=[seed],
                        methods=list(methods), k=k, params=params)
    cmp = run_compare(cfg, out_dir, progress)
    files = write_outputs(cmp)
    print("\n" + summary_text(cmp, cost=False))
    print(f"\nwrote {files['table']}, {files['report']} and the figures (open report.html in a browser)")
    return cmp

"""``domix demo``: the README's main job, on the built-in demo corpus.

Builds the demo corpus (news, math, dialogue, drama, code; ~30 s the first time, cached), then
trains the tiny GPT-2 (2 layers, d 128, context 128) with stratified and with proportional
weights at the same token budget and seed, prints a per-domain validation table and writes a PNG
of the validation-loss curves. Rerunning it reuses finished runs (each run resumes).

    domix demo                          # ~4 minutes on 2 cores
    domix demo --tokens 200000          # a quicker look
"""

from __future__ import annotations

from pathlib import Path

from . import io
from .evaluate.plots import plot_loss_curves
from .evaluate.table import loss_table
from .train.run import RunConfig, RunResult, prepare_data, train

DEMO_TOKENS = 786_432  # 384 steps of 16 x 128 tokens


def demo_config(
    out_dir: str | Path = "runs/demo",
    tokens: int = DEMO_TOKENS,
    seed: int = 0,
    corpus: str = "demo",
    max_docs_per_domain: int | None = None,
) -> RunConfig:
    """The demo's run recipe; ``mixing.method`` and ``out_dir`` are set per run."""
    return RunConfig.from_dict(
        {
            "out_dir": str(out_dir),
            "data": {"corpus": corpus, "max_docs_per_domain": max_docs_per_domain},
            "model": {"preset": "tiny"},
            "train": {
                "tokens": tokens,
                "batch_size": 16,
                "lr": 2e-3,
                "warmup_steps": 30,
                "seed": seed,
                "eval_every": 64,
                "eval_tokens_per_domain": 8192,
                "log_every": 16,
                "checkpoint_every": 128,
            },
        }
    )


def run_demo(
    out_dir: str | Path = "runs/demo",
    tokens: int = DEMO_TOKENS,
    seed: int = 0,
    methods: tuple[str, ...] = ("stratified", "proportional"),
    progress: bool = True,
    max_docs_per_domain: int | None = None,
) -> dict[str, RunResult]:
    out_dir = Path(out_dir)
    base = demo_config(out_dir, tokens, seed, max_docs_per_domain=max_docs_per_domain).merge(
        [f"train.progress={str(progress).lower()}"]
    )
    print("== building or opening the demo corpus", flush=True)
    data = prepare_data(base)
    print(
        f"   {data.corpus}\n   {data.tokenizer}; {int(data.train.tokens_per_domain.sum()):,} training tokens "
        f"in {len(data.train.names)} domains",
        flush=True,
    )
    results: dict[str, RunResult] = {}
    for method in methods:
        print(f"== training with {method} weights ({tokens:,} tokens)", flush=True)
        cfg = base.merge([f"mixing.method={method}", f"out_dir={out_dir / method}"])
        results[method] = train(cfg, resume=True, data=data)
        print(f"   mixture: {results[method].mixture}", flush=True)
    table = loss_table({m: r.eval for m, r in results.items()})
    print("\n" + table + "\n")
    io.write_text(
        out_dir / "table.md",
        loss_table({m: r.eval for m, r in results.items()}, markdown=True) + "\n",
    )
    png = plot_loss_curves(
        {m: out_dir / m for m in results},
        out_dir / "loss_curves.png",
        title=f"demo corpus, tiny GPT-2, {tokens:,} tokens per run",
    )
    print(f"wrote {out_dir / 'table.md'} and {png}")
    return results

"""``domix demo``: the README's main job, on the built-in demo corpus.

1. Builds the demo corpus (news, math, dialogue, drama, code; ~30 s the first time, then cached),
   by default a slice of 2,000 documents per domain (8.5k documents, 5.8M tokens), so that step 2
   takes ~3 minutes on 2 cores without AMX (MiniLM embeds ~56 documents/s there);
   ``--max-docs-per-domain 0`` uses the whole corpus (21k documents).
2. Regroups it (R&B step 1): MiniLM embeddings + k-means into ``k`` semantic domains (cached).
3. Trains the tiny GPT-2 (2 layers, d 128, context 128) at one token budget and seed, five runs:
   the 2 x 2 ablation R&B needs (stratified and R&B, each on the original and on the regrouped
   domains) plus proportional (natural) weights on the original domains.
4. Prints validation loss on the original domains (macro, token average, worst) and the effects of
   Regroup and of Balance separately, and writes ``table.md``, ``loss_curves.png`` and
   ``mixtures.png``. Rerunning reuses finished runs (each run resumes).

    domix demo                          # ~9 minutes on 2 cores the first time
    domix demo --tokens 200000          # a quicker look
"""

from __future__ import annotations

from pathlib import Path

from . import io
from .evaluate.plots import plot_loss_curves, plot_mixtures
from .evaluate.table import loss_table
from .train.run import RunConfig, RunResult, prepare_data, train

DEMO_TOKENS = 393_216  # 192 steps of 16 x 128 tokens
DEMO_K = 10
DEMO_DOCS_PER_DOMAIN = 2000
DEMO_PARAMS = {"rnb": {"round_steps": 32}}  # R&B's K: 6 rounds in 192 steps
RUNS = (("stratified", "original"), ("proportional", "original"), ("rnb", "original"),
        ("stratified", "regrouped"), ("rnb", "regrouped"))


def demo_config(out_dir: str | Path = "runs/demo", tokens: int = DEMO_TOKENS, seed: int = 0,
                corpus: str = "demo", max_docs_per_domain: int | None = DEMO_DOCS_PER_DOMAIN) -> RunConfig:
    """The demo's run recipe; ``mixing.method``, ``data.domains`` and ``out_dir`` are set per run."""
    return RunConfig.from_dict({
        "out_dir": str(out_dir),
        "data": {"corpus": corpus, "max_docs_per_domain": max_docs_per_domain, "eval_domains": "original"},
        "model": {"preset": "tiny"},
        "train": {"tokens": tokens, "batch_size": 16, "lr": 2e-3, "warmup_steps": 30, "seed": seed,
                  "eval_every": 32, "eval_tokens_per_domain": 8192, "log_every": 16, "checkpoint_every": 96},
    })


def run_demo(out_dir: str | Path = "runs/demo", tokens: int = DEMO_TOKENS, seed: int = 0, k: int = DEMO_K,
             runs: tuple[tuple[str, str], ...] = RUNS, progress: bool = True,
             max_docs_per_domain: int | None = DEMO_DOCS_PER_DOMAIN,
             params: dict[str, dict] = DEMO_PARAMS) -> dict[str, RunResult]:
    from .regroup import RegroupConfig, regroup

    out_dir = Path(out_dir)
    base = demo_config(out_dir, tokens, seed, max_docs_per_domain=max_docs_per_domain).merge(
        [f"train.progress={str(progress).lower()}"])
    print("== building or opening the demo corpus", flush=True)
    data = {"original": prepare_data(base)}
    corpus = data["original"].corpus
    print(f"   {corpus}; {data['original'].tokenizer}", flush=True)
    print(f"== regrouping into {k} semantic domains (embeddings + k-means; cached)", flush=True)
    rg = regroup(corpus, RegroupConfig(k=k, seed=seed))
    print(f"   {rg.name}: NMI vs original domains {rg.meta['nmi']:.3f}, purity {rg.meta['purity']:.3f}; "
          f"report {rg.path / 'report.md'}", flush=True)
    data["regrouped"] = prepare_data(base.merge([f"data.domains=regrouped:{rg.name}"]))
    results: dict[str, RunResult] = {}
    dirs: dict[str, Path] = {}
    for method, layer in runs:
        label = f"{method} / {layer}"
        print(f"== {label}: {len(data[layer].train.names)} domains, {tokens:,} tokens", flush=True)
        sets = [f"mixing.params.{k}={v}" for k, v in params.get(method, {}).items()]
        # a run's folder names what it depends on, so a rerun with other settings never resumes it
        tag = f"{layer}{'-' + rg.name if layer == 'regrouped' else ''}-seed{seed}-{tokens}tok"
        dirs[label] = out_dir / f"{method}-{tag}"
        cfg = base.merge([f"mixing.method={method}", f"data.domains={data[layer].domains.spec}",
                          f"out_dir={dirs[label]}", *sets])
        results[label] = train(cfg, resume=True, data=data[layer])
        print(f"   mixture: {results[label].mixture}", flush=True)
    evals = {label: r.eval for label, r in results.items()}
    print("\n" + loss_table(evals) + "\n")
    for line in ablation_lines(evals):
        print(line)
    io.write_text(out_dir / "table.md", loss_table(evals, markdown=True) + "\n\n" + "\n".join(ablation_lines(evals)) + "\n")
    plot_loss_curves(dirs, out_dir / "loss_curves.png", title=f"demo corpus, tiny GPT-2, {tokens:,} tokens per run")
    plot_mixtures({lab: d for lab, d in dirs.items() if not lab.startswith("stratified")}, out_dir / "mixtures.png",
                  title="mixture weights over training")
    print(f"\nwrote {out_dir / 'table.md'}, {out_dir / 'loss_curves.png'}, {out_dir / 'mixtures.png'}")
    return results


def ablation_lines(evals: dict) -> list[str]:
    """Regroup's and Balance's effects on the macro validation loss, separately (negative = better)."""
    macro = {label: e.macro for label, e in evals.items()}
    lines = ["macro validation loss differences (negative = better):"]
    pairs = [("Regroup (stratified: regrouped - original)", "stratified / regrouped", "stratified / original"),
             ("Balance on original (rnb - stratified)", "rnb / original", "stratified / original"),
             ("Balance on regrouped (rnb - stratified)", "rnb / regrouped", "stratified / regrouped"),
             ("R&B vs stratified on original domains", "rnb / regrouped", "stratified / original")]
    for text, a, b in pairs:
        if a in macro and b in macro:
            lines.append(f"  {text:<45} {macro[a] - macro[b]:+.4f}")
    return lines

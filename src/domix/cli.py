"""The ``domix`` command: thin subcommands over library functions.

domix demo                                         # the main job: build demo corpus, train, compare
domix corpus build demo                            # built-in corpora: demo, extended
domix corpus build --from data.jsonl --name mine   # your own corpus (jsonl, parquet, textdir, hf)
domix corpus info demo
domix train --config configs/tiny.yaml --set train.steps=50
domix regroup run demo --k 8                       # semantic domains -> data.domains=regrouped:k8
domix methods
domix compare --methods stratified,rnb,dograph --seeds 0,1,2   # equal-budget grid + report.html
domix mix regmix -c configs/tiny.yaml --out runs/regmix         # multi-stage: DoReMi, RegMix, ...
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Regroup a corpus into the domains that matter and balance their mixture in training.",
)
corpus_app = typer.Typer(no_args_is_help=True, help="Build and inspect corpora.")
app.add_typer(corpus_app, name="corpus")
regroup_app = typer.Typer(
    no_args_is_help=True, help="Regroup a corpus into semantic domains (R&B step 1)."
)
app.add_typer(regroup_app, name="regroup")


def _fail(e: Exception) -> None:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2)


@corpus_app.command("build")
def corpus_build(
    name: Annotated[
        str | None,
        typer.Argument(help="built-in corpus (demo, extended), or the name to store --from under"),
    ] = None,
    source: Annotated[
        Path | None, typer.Option("--from", help="your own data: a file or folder")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="jsonl, parquet, textdir or hf (a save_to_disk folder)")
    ] = "jsonl",
    text_field: Annotated[str, typer.Option(help="the text column; with --prompt-field, the response")] = "text",
    prompt_field: Annotated[
        list[str] | None,
        typer.Option(help="prompt/response records: a prompt column (repeat, in order: instruction, input)"),
    ] = None,
    id_field: Annotated[
        str | None,
        typer.Option(help="id column; omit the column to number records by file and line"),
    ] = "id",
    domain_field: str = "domain",
    subdomain_field: str = "subdomain",
    default_domain: Annotated[
        str | None, typer.Option(help="domain for records without one")
    ] = None,
    encoding: str = "utf-8",
    skip_bad: Annotated[
        bool, typer.Option(help="skip and count malformed records instead of stopping")
    ] = False,
    max_docs_per_domain: Annotated[
        int | None, typer.Option(help="built-in corpora: keep a capped slice")
    ] = None,
    validation_fraction: float = 0.05,
    test_fraction: float = 0.05,
    drop_small_domains: Annotated[
        bool, typer.Option(help="drop (and count) domains too small to split")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="output folder (default: the cache)")] = None,
    force: Annotated[bool, typer.Option(help="rebuild even if already built")] = False,
    tokenize: Annotated[
        bool, typer.Option(help="also train the default tokenizer and count tokens")
    ] = True,
) -> None:
    """Build a corpus: Parquet + manifest (fingerprint, per-domain summary, what was dropped and why).

    Example (CPU, ~30 s): domix corpus build demo
    Your data:          domix corpus build mine --from data.jsonl --text-field body --domain-field source
    Prompt/response:    domix corpus build sft --from records.jsonl --prompt-field instruction
                        --prompt-field input --text-field output --domain-field category
    """
    from .corpus import (
        Corpus,
        CorpusError,
        Fields,
        ReadReport,
        SplitConfig,
        build_corpus,
        read,
        write_corpus,
    )
    from .data.token_store import TokenStore
    from .io import cache_dir
    from .tokenizer import TokenizerConfig

    try:
        split = SplitConfig(
            validation_fraction,
            test_fraction,
            small_domains="drop" if drop_small_domains else "error",
        )
        split.validate()
        if source is None:
            if not name:
                raise CorpusError("name a built-in corpus (demo, extended) or give --from FILE")
            corpus = build_corpus(
                name, max_docs_per_domain, split, out, force=force, tokenize=tokenize
            )
        else:
            if not name:
                raise CorpusError("give a name for the corpus built --from your data")
            dest = out or cache_dir() / "corpora" / name
            if (dest / "manifest.json").exists() and not force:
                corpus = Corpus(dest)
            else:
                report = ReadReport()
                fields = Fields(
                    text_field,
                    id_field,
                    domain_field,
                    subdomain_field,
                    default_domain,
                    encoding,
                    "skip" if skip_bad else "raise",
                    prompt_field or None,
                )
                docs = read(fmt, source, fields, report)
                corpus = write_corpus(
                    docs, dest, name, report, split, sources={"from": str(source), "format": fmt},
                    records=bool(prompt_field),
                )
                if tokenize:
                    TokenStore.build(corpus, TokenizerConfig().build(corpus))
    except (CorpusError, ImportError, KeyError) as e:
        _fail(e)
    _print_info(corpus)


@corpus_app.command("info")
def corpus_info(
    ref: Annotated[str, typer.Argument(help="a corpus name in the cache or a corpus folder")],
) -> None:
    """What a corpus holds, per domain and sub-domain, and what was read, dropped and why.

    Example: domix corpus info demo
    """
    from .corpus import Corpus, CorpusError

    try:
        _print_info(Corpus.open(ref))
    except CorpusError as e:
        _fail(e)


def _print_info(corpus) -> None:
    m = corpus.manifest
    tokens = next(iter(m.get("tokens", {}).values()), None)
    typer.echo(f"corpus {m['name']}  fingerprint {m['fingerprint']}\n  at {corpus.path}")
    typer.echo(
        f"  {m['num_docs']:,} documents: "
        + ", ".join(f"{k} {v:,}" for k, v in m["docs_per_split"].items())
    )
    typer.echo(f"\n  {'domain':<16}{'docs':>9}{'chars':>13}{'tokens':>12}{'sub-domains':>13}")
    for d, s in m["summary"].items():
        t = tokens["domains"][d]["tokens"] if tokens and d in tokens["domains"] else None
        typer.echo(
            f"  {d:<16}{s['docs']:>9,}{s['chars']:>13,}{(f'{t:,}' if t is not None else '-'):>12}{len(s['subdomains']):>13,}"
        )
    if tokens:
        typer.echo(f"  tokens counted with {tokens['tokenizer']}")
    typer.echo("\n  " + "\n  ".join(corpus.report.lines()))
    if "build_seconds" in m:
        typer.echo(f"  build seconds: {m['build_seconds']}")


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="a run config YAML")],
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="override: key.path=value (repeatable)")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="continue from the newest checkpoint in out_dir")
    ] = False,
    nproc: Annotated[
        int, typer.Option(help="data-parallel processes on this machine (gloo); 1 = no DDP")
    ] = 1,
) -> None:
    """Train a model on a corpus with a mixing method.

    Example (CPU, ~1 minute): domix train -c configs/tiny.yaml --set train.steps=100 --set mixing.method=rnb
    """
    from .config import ConfigError
    from .corpus import CorpusError
    from .run import RunConfig
    from .run import train as run_train

    try:
        cfg = RunConfig.from_yaml(config).merge(overrides or [])
        if nproc > 1:
            from .launch import launch

            summaries = launch(cfg, nproc, resume=resume)
            typer.echo(f"{nproc} ranks, macro validation loss {summaries[0]['eval']['macro']:.4f}; "
                       f"wrote {cfg.out_dir}/summary.json and metrics.jsonl")
            return
        result = run_train(cfg, resume=resume)
    except (ConfigError, CorpusError, KeyError, FloatingPointError) as e:
        _fail(e)
    if result.eval is not None:
        from .evaluate.table import loss_table

        typer.echo("\n" + loss_table({cfg.mixing.method: result.eval}))
    typer.echo(f"\nwrote {result.out_dir}/summary.json, metrics.jsonl and mixing.json")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="where runs, table and plots go")] = Path("runs/demo"),
    tokens: Annotated[int, typer.Option(help="training tokens per run")] = 393_216,
    seed: int = 0,
    k: Annotated[int, typer.Option(help="regrouped domains")] = 10,
    max_docs_per_domain: Annotated[
        int, typer.Option(help="demo corpus slice per domain; 0 = the whole corpus")
    ] = 2000,
) -> None:
    """The main job: build the demo corpus, regroup it, and train the tiny model five times.

    Runs the 2 x 2 ablation of R&B (stratified and R&B, each on the original and on the regrouped
    domains) plus proportional weights, at one token budget and seed, and prints validation loss
    on the original domains with the effects of Regroup and Balance separated.

    Example (CPU, ~9 minutes the first time): domix demo     quicker: domix demo --tokens 200000
    """
    from .config import ConfigError
    from .corpus import CorpusError
    from .demo import run_demo

    try:
        run_demo(out, tokens, seed, k, max_docs_per_domain=max_docs_per_domain or None)
    except (ConfigError, CorpusError) as e:
        _fail(e)


compare_app = typer.Typer()  # its help is the callback's docstring (the grid); "report" rebuilds a report
app.add_typer(compare_app, name="compare")


@compare_app.callback(invoke_without_command=True)
def compare(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="where runs, tables, figures and report.html go")] = Path("runs/compare"),
    config: Annotated[Path | None, typer.Option("--config", "-c", help="a compare config YAML")] = None,
    corpus: Annotated[str | None, typer.Option(help="demo, extended, a corpus folder or cache name")] = None,
    methods: Annotated[str | None, typer.Option(help="comma list; name@original runs on one domain set")] = None,
    domains: Annotated[str | None, typer.Option(help="comma list of original, regrouped, subdomain")] = None,
    seeds: Annotated[str | None, typer.Option(help="comma list, e.g. 0,1,2")] = None,
    tokens: Annotated[int | None, typer.Option(help="training tokens of every run")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="compare config override: key=value, e.g. k=8, "
                                                      "params.rnb.round_steps=16, run=[model.preset=small]")
    ] = None,
    results: Annotated[Path | None, typer.Option(
        help="the results file: one JSON line per finished piece (default <out>/results.jsonl)")] = None,
    max_minutes: Annotated[float | None, typer.Option(
        help="start no new piece after this many minutes (rerun the same command to continue)")] = None,
) -> None:
    """Compare mixing methods at an equal token budget: methods x domain sets x seeds.

    The grid runs in pieces (one method x domain set x seed each); every finished piece is appended
    to --results as one JSON line and skipped when the same command runs again, here or on another
    machine (commit the file to carry a long grid across sessions). --max-minutes stops starting new
    pieces after that long; the tables then say which pieces are missing.

    Every run is checkpointed: rerunning the same command reads finished runs back and resumes an
    interrupted one. Prints the tables (loss and perplexity, mean ± sd over seeds, per domain, steps
    to stratified's final loss, wall time, overhead, extra compute) and writes table.md,
    results.json, the figures and a self-contained report.html into --out.

    Example (CPU, ~4 minutes): domix compare --methods stratified,rnb --seeds 0 --tokens 200000
    Default grid (10 methods x 2 domain sets x 3 seeds on the demo corpus): several hours on 2 cores.
    """
    if ctx.invoked_subcommand is not None:
        return
    from .compare import CompareConfig, run_compare, summary_text, write_outputs
    from .config import ConfigError
    from .corpus import CorpusError
    from .train.checkpoint import ResumeError

    given = {"corpus": corpus, "tokens": tokens, "methods": methods and methods.split(","),
             "domains": domains and domains.split(","), "seeds": seeds and [int(s) for s in seeds.split(",")]}
    try:
        cfg = CompareConfig.from_yaml(config) if config else CompareConfig()
        cfg = cfg.merge([f"{k}={v}" for k, v in given.items() if v is not None] + list(overrides or []))
        cmp = run_compare(cfg, out, results=results, max_minutes=max_minutes)
        files = write_outputs(cmp)
    except (ConfigError, CorpusError, ResumeError, KeyError, ValueError) as e:
        _fail(e)
    typer.echo("\n" + summary_text(cmp))
    typer.echo("\nwrote " + ", ".join(str(p) for p in files.values()))


@compare_app.command("report")
def compare_report(
    results: Annotated[Path, typer.Argument(help="a results file written by domix compare --results")],
    out: Annotated[Path, typer.Option(help="where table.md, the figures and report.html go")] = Path("runs/report"),
) -> None:
    """Rebuild the tables, figures and report.html from a results file alone (no run folders needed).

    A partial grid is readable: every cell shows its number of seeds, and the pieces not run yet are
    listed. Example: domix compare report benchmarks/results/compare-demo.jsonl --out runs/report
    """
    from .compare import load_comparison, summary_text, write_outputs

    try:
        cmp = load_comparison(results, out)
        files = write_outputs(cmp)
    except (OSError, ValueError, KeyError) as e:
        _fail(e)
    typer.echo(summary_text(cmp))
    typer.echo("\nwrote " + ", ".join(str(p) for p in files.values()))


@app.command()
def methods() -> None:
    """List every mixing method: the signals it reads, its extra compute and its paper.

    Online methods run inside `domix train`; multi-stage ones are run with `domix mix <name>`.

    Example: domix methods
    """
    from .balance.base import METHODS
    from .pipelines import PIPELINES

    typer.echo("online and static methods (domix train --set mixing.method=<name>)")
    for name, cls in METHODS.items():
        sig = "none (static)" if cls.static else ", ".join(sorted(cls.signals | {"train_loss"}))
        typer.echo(f"  {name:<14} signals: {sig:<28} extra: {cls.cost or 'none':<66} {cls.reference}")
    typer.echo("\nmulti-stage methods (domix mix <name>: stages of ordinary runs -> an artifact)")
    for name, cls in PIPELINES.items():
        sig = ", ".join(sorted(cls.signals)) or "val loss of each run"
        typer.echo(f"  {name:<14} signals: {sig:<28} extra: {cls.cost:<66} {cls.reference}")


@app.command()
def mix(
    method: Annotated[str, typer.Argument(help="doremi, regmix, mixing_laws or skillit (see domix methods)")],
    config: Annotated[Path, typer.Option("--config", "-c", help="the run config of every stage's runs")],
    out: Annotated[Path, typer.Option(help="pipeline folder: stages, markers, the artifact")],
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="run config override: key.path=value (repeatable)")
    ] = None,
    params: Annotated[
        list[str] | None, typer.Option("--param", help="method parameter: runs=16 (repeatable)")
    ] = None,
) -> None:
    """Run a multi-stage mixing method; write the mixture (or graph) a later run trains with.

    Every stage is an ordinary training run cached in --out; rerunning the same command skips the
    finished stages and resumes an interrupted one. Prints the artifact and how to train with it.

    Example (CPU, ~1 minute): domix mix doremi -c configs/tiny.yaml --out runs/doremi --set train.steps=40
    Others:  domix mix regmix -c configs/tiny.yaml --out runs/regmix --set train.steps=40 --param runs=8
    """
    from .config import ConfigError
    from .corpus import CorpusError
    from .pipelines import PipelineError, build_pipeline
    from .run import RunConfig

    try:
        cfg = RunConfig.from_yaml(config).merge(overrides or [])
        art = build_pipeline(method, cfg, out, params or []).run()
    except (ConfigError, CorpusError, PipelineError, KeyError, ImportError, FileNotFoundError) as e:
        _fail(e)
    if art.mixture is not None:
        typer.echo(f"\n{method} mixture:")
        for d, w in art.mixture.as_dict().items():
            typer.echo(f"  {d:<24}{w:.4f}")
    typer.echo("extra compute: " + ", ".join(f"{k} {v:,.0f}" for k, v in art.extra.items()))
    typer.echo(f"wrote {art.path}")
    typer.echo("train with: domix train -c CONFIG " + " ".join(f"--set {o}" for o in art.train_with))


@regroup_app.command("run")
def regroup_run(
    corpus: Annotated[str, typer.Argument(help="a built-in name, a corpus in the cache, a folder")],
    k: Annotated[str | None, typer.Option(help="number of clusters, or 'auto' (a sweep)")] = None,
    name: Annotated[str | None, typer.Option(help="artifact name (default k<k>)")] = None,
    engine: Annotated[str | None, typer.Option(help="local (streaming, resumable) or ray")] = None,
    embedder: Annotated[
        str | None, typer.Option(help="sentence-transformers (default), onnx (the same model in ONNX Runtime) or hashing")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="sentence-transformers model folder or cached name")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="truncate documents to this")] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="auto (bf16 with AMX, fp16 with AVX512-FP16), fp32, bf16, fp16"),
    ] = None,
    clusterer: Annotated[str | None, typer.Option(help="auto, faiss or sklearn")] = None,
    k_select: Annotated[
        str | None, typer.Option(help="with --k auto: silhouette or proxy (short training runs)")
    ] = None,
    k_min: int | None = None,
    k_max: int | None = None,
    k_step: int | None = None,
    seed: int | None = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="a RegroupConfig YAML")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="any RegroupConfig field: cluster.n_init=5 (repeatable)"),
    ] = None,
) -> None:
    """Embed, cluster and assign every document; write the regrouped:<name> domain layer.

    Example (CPU, ~20 s for a 600-document slice): domix corpus build demo --max-docs-per-domain 120 && domix regroup run demo-cap120 --k 5
    Full demo corpus (~7 min, embedding dominates): domix regroup run demo --k auto --k-min 4 --k-max 24
    Then train on it:   domix train -c configs/tiny.yaml --set data.domains=regrouped:k5
    """
    from .config import ConfigError
    from .corpus import CorpusError
    from .regroup import EmbedError, RegroupConfig, regroup

    flags = {
        "k": k,
        "engine": engine,
        "embed.name": embedder,
        "embed.model": model,
        "embed.max_tokens": max_tokens,
        "embed.precision": precision,
        "cluster.clusterer": clusterer,
        "choose_k.method": k_select,
        "choose_k.k_min": k_min,
        "choose_k.k_max": k_max,
        "choose_k.k_step": k_step,
        "seed": seed,
    }
    dotlist = [f"{key}={v}" for key, v in flags.items() if v is not None]
    try:
        cfg = RegroupConfig.from_yaml(config) if config else RegroupConfig()
        cfg = cfg.merge([*dotlist, *(overrides or [])])
        res = regroup(corpus, cfg, name=name)
    except (ConfigError, CorpusError, EmbedError, ImportError) as e:
        _fail(e)
    _print_regroup(res.meta, res.report)
    typer.echo(f"\nwrote {res.path}/  (report.md, report.json, map.png, assignment.parquet)")
    typer.echo(f"train on it: --set data.domains={res.spec}")


@regroup_app.command("show")
def regroup_show(
    corpus: Annotated[str, typer.Argument(help="a corpus name in the cache or a corpus folder")],
    name: Annotated[str, typer.Argument(help="the regrouped domains' name (see regroup list)")],
) -> None:
    """Print the cluster report of regrouped domains (report.md) and where its files are.

    Example: domix regroup show demo k8
    """
    from .corpus import Corpus, CorpusError
    from .data.cluster_store import artifact_dir, load_meta

    try:
        c = Corpus.open(corpus)
        load_meta(c, name)
    except CorpusError as e:
        _fail(e)
    out = artifact_dir(c, name)
    typer.echo((out / "report.md").read_text(encoding="utf-8"))
    typer.echo(f"files in {out}/")


@regroup_app.command("list")
def regroup_list(
    corpus: Annotated[str, typer.Argument(help="a corpus name in the cache or a corpus folder")],
) -> None:
    """List the regrouped domain sets made for a corpus, with k, purity and NMI.

    Example: domix regroup list demo
    """
    from .corpus import Corpus, CorpusError
    from .data.cluster_store import list_artifacts, load_meta

    try:
        c = Corpus.open(corpus)
        names = list_artifacts(c)
        metas = [load_meta(c, n) for n in names]
    except CorpusError as e:
        _fail(e)
    if not names:
        typer.echo(f"no regrouped domains for {c.name} yet: domix regroup run {c.name} --k 8")
    for m in metas:
        emb = m["config"]["embed"]["name"]
        typer.echo(
            f"regrouped:{m['name']:<20} k={m['k']:<4} purity {m['purity']:.3f}  NMI {m['nmi']:.3f}"
            f"  embedder {emb}"
        )


def _print_regroup(meta: dict, report: dict) -> None:
    unit = report["size_unit"]
    sel = meta.get("k_selection")
    if sel:
        curve = "  ".join(f"{r['k']}:{r[sel['key']]:.3f}" for r in sel["curve"])
        typer.echo(f"k by {sel['method']} ({sel['key']}): {curve}  -> k={sel['best']}")
    typer.echo(
        f"regrouped:{meta['name']}  k={meta['k']}  purity {meta['purity']:.3f}  NMI {meta['nmi']:.3f}"
        f"  (vs original domains, training documents)"
    )
    typer.echo(f"  {'cluster':<8}{'train docs':>11}{unit:>12}{'pbar':>8}  top domain    top terms")
    for c in report["clusters"]:
        top = f"{c['top_domain']} {c['top_domain_share']:.0%}" if c["top_domain"] else "-"
        typer.echo(
            f"  {c['name']:<8}{c['train_docs']:>11,}{c[unit]:>12,}{c['pbar']:>8.3f}  {top:<13} "
            + ", ".join(c["top_terms"][:5])
        )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo(
            "\ninterrupted: rerun the same command (with --resume for train) to continue", err=True
        )
        sys.exit(130)


if __name__ == "__main__":
    main()

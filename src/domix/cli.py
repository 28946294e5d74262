"""The ``domix`` command: thin subcommands over library functions.

domix demo                                         # the main job: build demo corpus, train, compare
domix corpus build demo                            # built-in corpora: demo, extended
domix corpus build --from data.jsonl --name mine   # your own corpus (jsonl, parquet, textdir, hf)
domix corpus info demo
domix train --config configs/tiny.yaml --set train.steps=50
domix methods
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
    text_field: str = "text",
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
                )
                docs = read(fmt, source, fields, report)
                corpus = write_corpus(
                    docs, dest, name, report, split, sources={"from": str(source), "format": fmt}
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
) -> None:
    """Train a model on a corpus with a mixing method.

    Example (CPU, ~1 minute): domix train -c configs/tiny.yaml --set train.steps=100 --set mixing.method=proportional
    """
    from .config import ConfigError
    from .corpus import CorpusError
    from .train.run import RunConfig
    from .train.run import train as run_train

    try:
        cfg = RunConfig.from_yaml(config).merge(overrides or [])
        result = run_train(cfg, resume=resume)
    except (ConfigError, CorpusError, KeyError) as e:
        _fail(e)
    if result.eval is not None:
        from .evaluate.table import loss_table

        typer.echo("\n" + loss_table({cfg.mixing.method: result.eval}))
    typer.echo(f"\nwrote {result.out_dir}/summary.json and metrics.jsonl")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="where runs, table and plot go")] = Path("runs/demo"),
    tokens: Annotated[int, typer.Option(help="training tokens per run")] = 786_432,
    seed: int = 0,
) -> None:
    """Build the demo corpus and train the tiny model with stratified and proportional weights.

    Example (CPU, ~4 minutes): domix demo     quicker: domix demo --tokens 200000
    """
    from .demo import run_demo

    run_demo(out, tokens, seed)


@app.command()
def methods() -> None:
    """List the registered mixing methods, the signals they read and their references.

    Example: domix methods
    """
    from .balance.base import METHODS

    for name, cls in METHODS.items():
        sig = (
            ", ".join(sorted(cls.signals | {"train_loss"} if cls.signals else ()))
            or "none (static)"
        )
        typer.echo(f"{name:<16} signals: {sig:<40} {cls.reference}")


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

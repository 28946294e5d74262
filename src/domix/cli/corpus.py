"""domix corpus build | info: built-in corpora and your own data, and what a corpus holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, fail

corpus_app = typer.Typer(no_args_is_help=True, help="Build and inspect corpora.")
app.add_typer(corpus_app, name="corpus")


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
    from ..corpus import (
        Corpus,
        CorpusError,
        Fields,
        ReadReport,
        SplitConfig,
        build_corpus,
        read,
        write_corpus,
    )
    from ..data.token_store import TokenStore
    from ..io import cache_dir
    from ..tokenizer import TokenizerConfig

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
        fail(e)
    _print_info(corpus)


@corpus_app.command("info")
def corpus_info(
    ref: Annotated[str, typer.Argument(help="a corpus name in the cache or a corpus folder")],
) -> None:
    """What a corpus holds, per domain and sub-domain, and what was read, dropped and why.

    Example: domix corpus info demo
    """
    from ..corpus import Corpus, CorpusError

    try:
        _print_info(Corpus.open(ref))
    except CorpusError as e:
        fail(e)


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

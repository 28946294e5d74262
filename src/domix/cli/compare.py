"""domix compare [report]: the equal-budget grid, run in resumable pieces, and its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, fail

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
    only: Annotated[str | None, typer.Option(
        help="train only these pieces now, comma list like --methods (*@original: every method there)")] = None,
) -> None:
    """Compare mixing methods at an equal token budget: methods x domain sets x seeds.

    The grid runs in pieces (one method x domain set x seed each); every finished piece is appended
    to --results as one JSON line and skipped when the same command runs again, here or on another
    machine (commit the file to carry a long grid across sessions). --max-minutes stops starting new
    pieces after that long; the tables then say which pieces are missing. --only trains a part of the
    grid now (e.g. the pieces that do not need the regrouped domains) and leaves the rest for later.

    Every run is checkpointed: rerunning the same command reads finished runs back and resumes an
    interrupted one. Prints the tables (loss and perplexity, mean ± sd over seeds, per domain, steps
    to stratified's final loss, wall time, overhead, extra compute) and writes table.md,
    results.json, the figures and a self-contained report.html into --out.

    Example (CPU, ~4 minutes): domix compare --methods stratified,rnb --seeds 0 --tokens 200000
    Default grid (10 methods x 2 domain sets x 3 seeds on the demo corpus): several hours on 2 cores.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..compare import CompareConfig, run_compare, summary_text, write_outputs
    from ..config import ConfigError
    from ..corpus import CorpusError
    from ..train.checkpoint import ResumeError

    given = {"corpus": corpus, "tokens": tokens, "methods": methods and methods.split(","),
             "domains": domains and domains.split(","), "seeds": seeds and [int(s) for s in seeds.split(",")]}
    try:
        cfg = CompareConfig.from_yaml(config) if config else CompareConfig()
        cfg = cfg.merge([f"{k}={v}" for k, v in given.items() if v is not None] + list(overrides or []))
        cmp = run_compare(cfg, out, results=results, max_minutes=max_minutes,
                          only=only and only.split(","))
        files = write_outputs(cmp)
    except (ConfigError, CorpusError, ResumeError, KeyError, ValueError) as e:
        fail(e)
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
    from ..compare import load_comparison, summary_text, write_outputs

    try:
        cmp = load_comparison(results, out)
        files = write_outputs(cmp)
    except (OSError, ValueError, KeyError) as e:
        fail(e)
    typer.echo(summary_text(cmp))
    typer.echo("\nwrote " + ", ".join(str(p) for p in files.values()))

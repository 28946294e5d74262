"""domix train | demo | methods | mix: training runs, the main job and the mixing methods."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, fail


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
    from ..config import ConfigError
    from ..corpus import CorpusError
    from ..run import RunConfig
    from ..run import train as run_train

    try:
        cfg = RunConfig.from_yaml(config).merge(overrides or [])
        if nproc > 1:
            from ..launch import launch

            summaries = launch(cfg, nproc, resume=resume)
            typer.echo(f"{nproc} ranks, macro validation loss {summaries[0]['eval']['macro']:.4f}; "
                       f"wrote {cfg.out_dir}/summary.json and metrics.jsonl")
            return
        result = run_train(cfg, resume=resume)
    except (ConfigError, CorpusError, KeyError, FloatingPointError) as e:
        fail(e)
    if result.eval is not None:
        from ..evaluate.table import loss_table

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
    from ..config import ConfigError
    from ..corpus import CorpusError
    from ..demo import run_demo

    try:
        run_demo(out, tokens, seed, k, max_docs_per_domain=max_docs_per_domain or None)
    except (ConfigError, CorpusError) as e:
        fail(e)


@app.command()
def methods() -> None:
    """List every mixing method: the signals it reads, its extra compute and its paper.

    Online methods run inside `domix train`; multi-stage ones are run with `domix mix <name>`.

    Example: domix methods
    """
    from ..balance.base import METHODS
    from ..pipelines import PIPELINES

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
    from ..config import ConfigError
    from ..corpus import CorpusError
    from ..pipelines import PipelineError, build_pipeline
    from ..run import RunConfig

    try:
        cfg = RunConfig.from_yaml(config).merge(overrides or [])
        art = build_pipeline(method, cfg, out, params or []).run()
    except (ConfigError, CorpusError, PipelineError, KeyError, ImportError, FileNotFoundError) as e:
        fail(e)
    if art.mixture is not None:
        typer.echo(f"\n{method} mixture:")
        for d, w in art.mixture.as_dict().items():
            typer.echo(f"  {d:<24}{w:.4f}")
    typer.echo("extra compute: " + ", ".join(f"{k} {v:,.0f}" for k, v in art.extra.items()))
    typer.echo(f"wrote {art.path}")
    typer.echo("train with: domix train -c CONFIG " + " ".join(f"--set {o}" for o in art.train_with))

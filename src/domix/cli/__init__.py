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

import typer

from . import compare, corpus, regroup, run  # noqa: F401  (each registers its commands on app)
from ._app import app


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo(
            "\ninterrupted: rerun the same command (with --resume for train) to continue", err=True
        )
        sys.exit(130)

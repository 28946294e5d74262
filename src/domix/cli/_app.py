"""The ``domix`` application object and the one way a command fails (shared by every command group)."""

from __future__ import annotations

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Regroup a corpus into the domains that matter and balance their mixture in training.",
)


def fail(e: Exception) -> None:
    """Print ``error: <e>`` and exit 2: a user error, not a traceback."""
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2)

"""The `chronic` command line."""

from __future__ import annotations

import typer

from chronic.cli import dev, worker

app = typer.Typer(no_args_is_help=True, help="Chronic-condition benefit applications on Temporal.")
app.add_typer(dev.app, name="dev")
app.command(name="worker")(worker.worker)


def main() -> None:
    app()

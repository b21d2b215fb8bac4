"""The `chronic` command line."""

from __future__ import annotations

import typer

from chronic.cli import applications, db, demo, dev, expert, schema, seed, worker

app = typer.Typer(no_args_is_help=True, help="Chronic-condition benefit applications on Temporal.")
app.add_typer(dev.app, name="dev")
app.add_typer(db.app, name="db")
app.add_typer(seed.app, name="seed")
app.command(name="worker")(worker.worker)
app.command(name="submit")(applications.submit)
app.command(name="resubmit")(applications.resubmit)
app.command(name="status")(applications.status)
app.add_typer(expert.app, name="expert")
app.add_typer(schema.app, name="schema")
app.command(name="demo")(demo.demo)


def main() -> None:
    app()

"""`chronic worker ROLE`: one worker process polling its role's task queue."""

from __future__ import annotations

import asyncio
import logging
import sys

import typer
from rich.logging import RichHandler

from chronic.settings import get_settings
from workers import ROLES


def worker(
    role: str = typer.Argument(..., help=f"One of: {', '.join(ROLES)}."),
) -> None:
    """Run one worker role until Ctrl-C / SIGTERM (in-flight activities finish first)."""
    from workers.runner import run_worker

    if role not in ROLES:
        typer.echo(f"unknown worker role {role!r}; choose one of: {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)
    settings = get_settings()
    if sys.stderr.isatty():
        logging.basicConfig(
            level=settings.log_level,
            format="%(message)s",
            handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
        )
    else:  # under `dev up` or a container: one plain line per record, prefixed by the caller
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        )
    try:
        asyncio.run(run_worker(role, settings))
    except (OSError, RuntimeError) as error:
        # Typically: Temporal or Postgres not reachable. Say so in one line.
        logging.getLogger("chronic.worker").error("worker %s could not start: %s", role, error)
        raise typer.Exit(1) from None

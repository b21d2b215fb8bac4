"""`chronic db`: migrate the business database (upgrade, downgrade, current).

Also home of :func:`with_database`, the one way a command gets at PostgreSQL: it checks the
database answers first, so an operator sees one line saying what is wrong instead of a
driver traceback (``chronic seed`` uses it too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

import typer
from alembic.util import CommandError
from rich.console import Console

from chronic import migrate

app = typer.Typer(
    no_args_is_help=True, help="Migrate the business database (Alembic, runs from anywhere)."
)
# soft_wrap: a line is never broken at the terminal width (scripts grep these lines).
console = Console(soft_wrap=True, highlight=False)
errors = Console(stderr=True, soft_wrap=True, highlight=False)

T = TypeVar("T")


def with_database(action: Callable[[str], Awaitable[T]]) -> T:
    """Run ``action(url)`` on the configured database once it has answered.

    When PostgreSQL cannot be reached (or refuses us), print one line to stderr saying why and
    what to do, and exit with status 1.
    """

    async def checked() -> T:
        url = await migrate.check_reachable()
        return await action(url)

    try:
        return asyncio.run(checked())
    except migrate.DatabaseUnreachable as error:
        fail(str(error))


def fail(message: str) -> NoReturn:
    """Print ``message`` as one plain line on stderr and exit with status 1."""
    errors.print(message, markup=False)
    raise typer.Exit(1)


def describe(revision: str | None) -> str:
    """A revision for people: ``0001 (head)``, ``0001``, or ``base (no schema)``."""
    if revision is None:
        return "base (no schema)"
    return f"{revision} (head)" if revision == migrate.head() else revision


def _alembic(action: Callable[[str], Awaitable[T]]) -> T:
    try:
        return with_database(action)
    except CommandError as error:  # unknown revision, a target above head, …
        fail(f"alembic: {error} — `chronic db current` shows where the database is")


@app.command()
def upgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision (default: the newest, `head`).")
    ] = "head",
) -> None:
    """Migrate the schema up to REVISION (a no-op when it is already there)."""
    _move(migrate.upgrade, revision, "[green]upgraded[/]")


@app.command(context_settings={"ignore_unknown_options": True})  # let `-1` be an argument
def downgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision: `-1` (one step), `base` (empty), or an ID.")
    ],
) -> None:
    """Migrate the schema down to REVISION; `base` drops every table of chronic."""
    _move(migrate.downgrade, revision, "[yellow]downgraded[/]")


def _move(step: Callable[[str, str], Awaitable[None]], revision: str, verb: str) -> None:
    """Run an upgrade or downgrade and say where the database went from and to."""

    async def run(url: str) -> tuple[str, str | None, str | None]:
        before = await migrate.current(url)
        await step(url, revision)
        return url, before, await migrate.current(url)

    url, before, after = _alembic(run)
    where = migrate.mask_url(url)
    if before == after:
        console.print(f"{where} is already at {describe(after)}")
    else:
        console.print(f"{verb} {where} from {describe(before)} to {describe(after)}")


@app.command()
def current() -> None:
    """Say which revision the database is at, and whether that is chronic's newest."""

    async def run(url: str) -> tuple[str, str | None]:
        return url, await migrate.current(url)

    url, revision = with_database(run)
    where = migrate.mask_url(url)
    newest = migrate.head()
    if revision == newest:
        console.print(f"{where} is at {describe(revision)}")
    else:
        console.print(
            f"{where} is at [yellow]{describe(revision)}[/]; this chronic's newest is {newest} — "
            "run `chronic db upgrade`"
        )

"""`chronic seed`: fill the database with the demo world (idempotent; safe to run again)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from chronic import migrate
from chronic.cli.db import console, describe, fail, with_database
from chronic.db import Database
from chronic.seed import SeedReport, seed_world
from chronic.seed.world import MIN_EXPERTS_PER_CATEGORY

app = typer.Typer(
    invoke_without_command=True,
    help="Create the demo world of every region: catalogue, hospitals, insured persons, "
    "expert pool.",
)


@app.callback()
def seed(
    persons: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Generated insured persons per region, besides the example applicants "
            "(default: each region's reference file: Sanmenxia 200, Wuhan 60, Jilin 60).",
        ),
    ] = None,
    experts: Annotated[
        int,
        typer.Option(
            min=MIN_EXPERTS_PER_CATEGORY, help="Experts in the pool (E001…), every category ≥ 4."
        ),
    ] = 48,
) -> None:
    """Create the demo world; rows already there (and what workflows changed) are kept."""

    async def run(url: str) -> tuple[str, SeedReport | str]:
        at, newest = await migrate.current(url), migrate.head()
        if at != newest:
            return url, (
                f"{migrate.mask_url(url)} is at {describe(at)}, the demo world needs {newest} — "
                "run `chronic db upgrade` first"
            )
        db = Database(url)
        try:
            return url, await seed_world(db, persons=persons, experts=experts)
        finally:
            await db.dispose()

    url, outcome = with_database(run)
    if isinstance(outcome, str):
        fail(outcome)
    console.print(_table(migrate.mask_url(url), outcome))


def _table(where: str, report: SeedReport) -> Table:
    table = Table(
        title=f"demo world in {where}",
        caption=f"settlement histories counted back from {report.today:%Y-%m}",
    )
    table.add_column("table")
    table.add_column("created", justify="right")
    table.add_column("already present", justify="right")
    table.add_column("refreshed from file", justify="right")
    for name, count in report.tables.items():
        table.add_row(name, str(count.created), str(count.present), str(count.updated))
    return table

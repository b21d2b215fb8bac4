"""`chronic audit …`: checks an auditor makes on the record.

``audit draw APP`` re-derives every random draw of an application from the office's draw key
(``CHRONIC_DRAW_SECRET``), the offer's number and the pool it recorded, and says for each offer
whether the expert on record is the one the draw gives (seed 002: assignment 公开、公正、透明).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from chronic.cli.output import ApplicationArg, CommandFailed, console, database, run

app = typer.Typer(no_args_is_help=True, help="An auditor's checks: re-derive expert draws.")


def draw(
    application: ApplicationArg,
    show_pool: Annotated[
        bool, typer.Option("--pool", help="List every candidate's code, not just the count.")
    ] = False,
) -> None:
    """Re-derive each expert draw of APP from the office's key; exit 1 if any does not match."""
    mismatches = run(lambda: _check(application, show_pool))
    if mismatches:
        raise typer.Exit(1)


async def _check(application_id: str, show_pool: bool) -> int:
    import sqlalchemy as sa
    from sqlmodel import col

    from chronic.privacy import draw_key
    from chronic.settings import get_settings
    from models.draw import draw_seed, drawn
    from models.tables import Application, Offer

    key = draw_key(get_settings())
    async with database() as db, db.session() as session:
        if await session.get(Application, application_id) is None:
            raise CommandFailed(f"no application {application_id}")
        offers = (
            await session.scalars(
                sa.select(Offer)
                .where(col(Offer.application_id) == application_id)
                .order_by(col(Offer.seq))
            )
        ).all()
    if not offers:
        console.print(f"{application_id}: no expert has been drawn yet")
        return 0
    table = Table("offer", "stage", "pool", "seed", "on record", "re-derived", box=None)
    mismatches: list[str] = []
    for offer in offers:
        pool = ", ".join(offer.candidates) if show_pool else f"{len(offer.candidates)} experts"
        if offer.draw_seed is None:
            verdict = (
                "named by the office (no draw)"
                if offer.candidates == [offer.expert_code]
                else "drawn before draws were recorded"
            )
            table.add_row(str(offer.seq), offer.stage, pool, "-", offer.expert_code, verdict)
            continue
        seed = draw_seed(key, application_id, offer.seq)
        expert = drawn(offer.candidates, seed)
        if seed != offer.draw_seed:
            mismatches.append(f"offer {offer.seq}: the recorded seed is not this office key's")
        elif expert != offer.expert_code:
            mismatches.append(
                f"offer {offer.seq}: {offer.expert_code} is on record, the draw gives {expert}"
            )
        verdict = "[red]✗[/]" if seed != offer.draw_seed or expert != offer.expert_code else "✓"
        table.add_row(
            str(offer.seq),
            offer.stage,
            pool,
            offer.draw_seed[:16],
            offer.expert_code,
            f"{verdict} {expert}",
        )
    console.print(table)
    for line in mismatches:
        console.print(f"[red]✗ {line}[/]")
    console.print(
        f"{application_id}: {len(offers)} offers checked, each as on record"
        if not mismatches
        else f"[red]{application_id}: {len(mismatches)} offer(s) do not match their draw[/]"
    )
    return len(mismatches)


app.command()(draw)

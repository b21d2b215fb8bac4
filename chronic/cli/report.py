"""`chronic report …`: what the office reads each month."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from chronic.cli.output import CommandFailed, console, database, office_region, run, zone_of

app = typer.Typer(no_args_is_help=True, help="Reports for the office.")


def _last_month(region: str) -> str:
    today = datetime.now(UTC).astimezone(zone_of(region)).date()
    return f"{today.replace(day=1) - timedelta(days=1):%Y-%m}"


def experts(
    month: Annotated[
        str | None,
        typer.Option("--month", "-m", metavar="YYYY-MM", help="The month; default: the last one."),
    ] = None,
    hospital: Annotated[
        str | None, typer.Option("--hospital", "-H", metavar="H", help="Only this hospital.")
    ] = None,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", metavar="FILE", help="Also write the lines as CSV.")
    ] = None,
) -> None:
    """Each expert's offers, accepts, declines, lapses, decisions and median response time in
    a month, by hospital (the monthly statistic every hospital receives)."""
    from chronic.reports.experts import ExpertMonth, as_csv, expert_month, month_bounds

    region = office_region()
    chosen = month or _last_month(region)
    try:
        month_bounds(chosen, zone_of(region))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="'--month'") from None

    async def lines() -> list[ExpertMonth]:
        async with database() as db, db.session() as session:
            found = await expert_month(
                session, region=region, month=chosen, zone=zone_of(region), hospital=hospital
            )
        if hospital and not found:
            raise CommandFailed(f"no expert of {region} at hospital {hospital}")
        return found

    report = run(lines)
    for (code, name), group in groupby(report, key=lambda r: (r.hospital_code, r.hospital_name)):
        rows = list(group)
        table = Table(
            "expert",
            "status",
            "offers",
            "accepted",
            "declined",
            "lapsed",
            "decision lapsed",
            "decisions",
            "median answer",
            title=f"{code} {escape(name)} — {chosen}",
            title_justify="left",
        )
        for r in rows:
            median = (
                "-" if r.median_response_minutes is None else _minutes(r.median_response_minutes)
            )
            table.add_row(
                f"{r.expert_code} {escape(r.expert_name)}",
                r.status,
                str(r.offers),
                str(r.accepted),
                str(r.declined),
                str(r.lapsed),
                str(r.decision_lapsed),
                str(r.decisions),
                median,
            )
        console.print(table)
    offers = sum(r.offers for r in report)
    console.print(f"{region} {chosen}: {len(report)} experts, {offers} offers")
    if csv_file is not None:
        csv_file.write_text(as_csv(report), encoding="utf-8")
        console.print(f"written {csv_file}")


def _minutes(value: float) -> str:
    return f"{value:.0f} min" if value < 120 else f"{value / 60:.1f} h"


app.command()(experts)

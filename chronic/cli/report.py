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


def chosen_month(month: str | None, region: str, option: str) -> str:
    """``month`` (YYYY-MM) checked, or the month before today in the region's time; a usage
    error naming ``option`` otherwise (`report experts --month`, `audit sample --period`)."""
    from chronic.reports.experts import month_bounds

    if month is None:
        today = datetime.now(UTC).astimezone(zone_of(region)).date()
        return f"{today.replace(day=1) - timedelta(days=1):%Y-%m}"
    try:
        month_bounds(month, zone_of(region))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=f"'{option}'") from None
    return month


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
    from chronic.reports.experts import ExpertMonth, as_csv, expert_month

    region = office_region()
    chosen = chosen_month(month, region, "--month")

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


def overview(
    charts: Annotated[
        Path | None,
        typer.Option("--charts", metavar="DIR", help="Also draw the charts (PNG) into DIR."),
    ] = None,
) -> None:
    """Where the applications stand: by region and status, open ones by stage, SLA breaches,
    median working days to a decision, approvals and new benefits per month."""
    from chronic.reports.overview import RegionOverview
    from chronic.reports.overview import overview as build
    from chronic.workdays import default_calendar
    from models.policy import available_regions, load_policy

    async def main() -> list[RegionOverview]:
        policies = {r: load_policy(r) for r in available_regions()}
        async with database() as db, db.session() as session:
            return await build(session, policies, calendar=default_calendar())

    regions = run(main)
    table = Table(
        "region",
        "applications",
        "open",
        "decided",
        "median working days",
        "SLA target",
        "decided late",
        "open overdue",
        title="Overview",
        title_justify="left",
    )
    for r in regions:
        total = sum(r.by_status.values())
        median = "-" if r.median_working_days is None else f"{r.median_working_days:g}"
        table.add_row(
            r.region,
            str(total),
            str(sum(r.open_by_stage.values())),
            str(len(r.decision_working_days)),
            median,
            f"{r.sla_working_days_max} d",
            str(r.decided_late),
            str(r.open_overdue),
        )
    console.print(table)
    for r in regions:
        if r.by_status:
            statuses = ", ".join(f"{s} {n}" for s, n in sorted(r.by_status.items()))
            stages = ", ".join(f"{s} {n}" for s, n in sorted(r.open_by_stage.items())) or "-"
            console.print(f"{r.region}: {statuses}; open by stage: {stages}")
    months = sorted({m for r in regions for m in r.approvals_by_month})
    if months:
        per_month = Table("month", *(r.region for r in regions), title="Approvals per month")
        for m in months:
            per_month.add_row(m, *(str(r.approvals_by_month.get(m, 0)) for r in regions))
        console.print(per_month)
    if charts is not None:
        from chronic.reports.charts import approvals_chart, status_chart

        charts.mkdir(parents=True, exist_ok=True)
        for drawn in (
            status_chart(regions, charts / "status.png"),
            approvals_chart(regions, charts / "approvals.png"),
        ):
            console.print(f"written {drawn}")


app.command()(overview)

"""`chronic audit …`: the audit sample of approvals (抽审) and checks an auditor makes.

- ``audit sample`` draws a period's sample (the schedule does it on the 2nd of each month) or
  shows the one drawn, with its seed and population; ``--verify`` redraws it from those.
- ``audit list`` and ``audit decide ID --ok|--forged --note`` work through its tasks; a forged
  finding revokes the benefit from a date and tells the person by SMS.
- ``audit draw APP`` re-derives every random expert draw of an application from the office's
  draw key (``CHRONIC_DRAW_SECRET``), the offer's number and the pool it recorded, and says for
  each offer whether the expert on record is the one the draw gives (seed 002: 公开、公正、透明).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.table import Table
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from chronic.actor import operator
from chronic.cli.output import (
    ApplicationArg,
    CommandFailed,
    console,
    database,
    errors,
    office_region,
    run,
    temporal,
    zone_of,
)
from chronic.cli.report import chosen_month

app = typer.Typer(
    no_args_is_help=True,
    help="The audit sample of approvals, its findings, and re-derived expert draws.",
)

PeriodOption = Annotated[
    str | None,
    typer.Option(
        "--period", "-p", metavar="YYYY-MM", help="Approvals of this month; default: the last one."
    ),
]


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


def sample(
    period: PeriodOption = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Redraw from the kept seed and population.")
    ] = False,
) -> None:
    """Draw the period's audit sample (once; later calls show it) and print it."""
    from datetime import UTC, datetime

    from chronic import audits
    from chronic.actor import operator
    from chronic.privacy import draw_key
    from chronic.settings import get_settings

    region = office_region()
    chosen = chosen_month(period, region, "--period")
    settings = get_settings()

    async def main() -> audits.Drawn:
        async with database() as db, db.session() as session:
            return await audits.draw_sample(
                session,
                region=region,
                period=chosen,
                rate=settings.policy(region).audit_sample_rate,
                key=draw_key(settings),
                zone=zone_of(region),
                now=datetime.now(UTC),
                actor=operator(),
            )

    drawn = run(main)
    s = drawn.sample
    when = "drawn now" if drawn.created else f"drawn {s.drawn_at:%Y-%m-%d %H:%M} UTC"
    console.print(
        f"{region} {chosen}: {len(drawn.tasks)} of {len(s.population)} approvals sampled at "
        f"{s.rate:.0%} ({when})"
    )
    console.print(f"seed {s.seed}")
    for task in drawn.tasks:
        console.print(f"  #{task.id} {task.application_id} {task.status}")
    if verify:
        again = audits.redraw(s)
        recorded = [t.application_id for t in drawn.tasks]
        if again != recorded:
            console.print(f"[red]✗ the seed gives {', '.join(again) or 'none'}[/]")
            raise typer.Exit(1)
        console.print("✓ redrawn from the seed, the rate and the population: the same sample")


def list_(
    period: Annotated[
        str | None, typer.Option("--period", "-p", metavar="YYYY-MM", help="Only this period.")
    ] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only undecided tasks.")] = False,
) -> None:
    """The audit tasks: sampled application, period, finding."""
    import sqlalchemy as sa
    from sqlmodel import col

    from models.tables import AuditSample, AuditTask

    region = office_region()

    async def main() -> list[tuple[AuditTask, str]]:
        query = (
            sa.select(AuditTask, col(AuditSample.period))
            .join(AuditSample, col(AuditSample.id) == col(AuditTask.sample_id))
            .where(col(AuditSample.region) == region)
            .order_by(col(AuditSample.period), col(AuditTask.id))
        )
        if period:
            query = query.where(col(AuditSample.period) == period)
        if open_only:
            query = query.where(col(AuditTask.status) == "open")
        async with database() as db, db.session() as session:
            return [(t, p) for t, p in (await session.execute(query)).all()]

    rows = run(main)
    if not rows:
        console.print("no audit task" + (" open" if open_only else ""))
        return
    table = Table("task", "period", "application", "finding", "by", "revoked from", box=None)
    for task, task_period in rows:
        table.add_row(
            str(task.id),
            task_period,
            task.application_id,
            task.status,
            task.decided_by or "-",
            str(task.revoked_from or "-"),
        )
    console.print(table)


def decide(
    task_id: Annotated[int, typer.Argument(metavar="ID", help="The audit task.")],
    ok: Annotated[bool, typer.Option("--ok", help="The records are sound.")] = False,
    forged: Annotated[
        bool, typer.Option("--forged", help="The records are forged: revoke the benefit.")
    ] = False,
    note: Annotated[str, typer.Option("--note", "-n", help="What was checked (audit trail).")] = "",
    revoke_from: Annotated[
        str | None,
        typer.Option(
            "--revoke-from", metavar="YYYY-MM-DD", help="Forged: from when; default today."
        ),
    ] = None,
) -> None:
    """Record an audit task's finding; --forged revokes the benefit and tells the person."""
    from datetime import UTC, date, datetime

    from chronic import audits
    from chronic.actor import operator
    from chronic.sms.delivery import start_delivery
    from models.notifications import SmsRequest, SmsTemplate, reason_param

    if ok == forged:
        raise typer.BadParameter(
            "give exactly one of --ok or --forged", param_hint="'--ok' / '--forged'"
        )
    region = office_region()
    now = datetime.now(UTC)
    try:
        since = (
            date.fromisoformat(revoke_from)
            if revoke_from
            else now.astimezone(zone_of(region)).date()
        )
    except ValueError:
        raise typer.BadParameter(
            f"{revoke_from!r} is not a date like 2026-12-01", param_hint="'--revoke-from'"
        ) from None

    async def main() -> audits.Decided:
        async with database() as db:
            try:
                async with db.session() as session:
                    decided = await audits.decide(
                        session,
                        task_id,
                        forged=forged,
                        note=note,
                        actor=operator(),
                        now=now,
                        revoke_from=since,
                    )
            except audits.AuditRefused as refused:
                raise CommandFailed(str(refused)) from None
        if decided.revoked is not None:
            client = await temporal()
            await _stop_benefit(client, decided.task.application_id, since, note)
            # Committed first: the person is told of a revocation that is on record.
            await start_delivery(
                client,
                SmsRequest(
                    dedup_key=f"{decided.task.application_id}:revoked",
                    template=SmsTemplate.BENEFIT_REVOKED,
                    application_id=decided.task.application_id,
                    params={
                        "date": since.isoformat(),
                        "reason": reason_param("申报材料经核查不实"),
                    },
                ),
            )
        return decided

    decided = run(main)
    task = decided.task
    if decided.revoked is not None:
        console.print(
            f"audit task {task.id}: {task.application_id} forged; benefit revoked from {since}, "
            "the person is told by SMS"
        )
    else:
        console.print(f"audit task {task.id}: {task.application_id} ok")


async def _stop_benefit(client: Client, application_id: str, since: date, note: str) -> None:
    """Tell the benefit's workflow (``benefit-<application id>``) that it is revoked: its
    timers stop and it ends. A benefit approved before benefits ran as their own process has
    none; one that has ended already has nothing to stop."""
    from models.benefit import Revoke, workflow_id
    from workflows.benefit import BenefitWorkflow

    handle = client.get_workflow_handle_for(BenefitWorkflow.run, workflow_id(application_id))
    revocation = Revoke(on=since, reason=note.strip(), actor=operator())
    try:
        await handle.execute_update(BenefitWorkflow.revoke, revocation)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            errors.print(f"the benefit's process of {application_id} was not told: {error}")
    except WorkflowUpdateFailedError as error:  # it has ended or was revoked already
        errors.print(f"the benefit's process of {application_id}: {error.cause}")


app.command()(sample)
app.command(name="list")(list_)
app.command()(decide)

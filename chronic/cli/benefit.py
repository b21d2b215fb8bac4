"""`chronic benefit …`: the benefit after approval, as the office sees and changes it.

Each change is an Update of the benefit's workflow (``benefit-<application id>``); its
validator refuses a change beyond the region's yearly limit, a hospital outside the region's
register, a hospital stay where the policy does not suspend the benefit, or an admission of
someone already admitted — the command prints that refusal as it is and exits 1. The clerk
acts as ``clerk:<name>`` (``CHRONIC_OPERATOR``, else the login name), which the audit trail
records with each change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.markup import escape
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from chronic.actor import operator
from chronic.cli.output import (
    QUERY_TIMEOUT,
    ApplicationArg,
    CommandFailed,
    console,
    disease_label,
    local,
    run,
    run_update,
    temporal,
    zone_of,
)
from models.benefit import (
    BenefitView,
    ChangeDesignation,
    DesignationKind,
    RecordStay,
    workflow_id,
)
from workflows.benefit import BenefitWorkflow

app = typer.Typer(
    no_args_is_help=True,
    help="The benefit after approval: show it, change the designated hospital or pharmacy, "
    "record a hospital stay (Jilin).",
)

T = TypeVar("T")
Handle = WorkflowHandle[BenefitWorkflow, BenefitView]
DateOption = Annotated[
    datetime, typer.Option("--on", formats=["%Y-%m-%d"], help="The day (local date).")
]


def _clerk() -> str:
    return "clerk:" + operator().removeprefix("operator:")


def _handle(client: Client, application_id: str) -> Handle:
    return client.get_workflow_handle_for(BenefitWorkflow.run, workflow_id(application_id))


def _no_benefit(application_id: str) -> CommandFailed:
    return CommandFailed(
        f"no benefit for {application_id}: it is not approved (see `chronic status "
        f"{application_id}`), or it was approved before benefits ran as their own process"
    )


async def _view(client: Client, application_id: str) -> BenefitView:
    """The benefit as it stands: the final view of an ended one, else the workflow's query."""
    handle = _handle(client, application_id)
    try:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.COMPLETED:
            return await handle.result()
        return await handle.query(BenefitWorkflow.view, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise _no_benefit(application_id) from None
        if error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise CommandFailed(
                f"no worker answered for the benefit of {application_id}: start the workers "
                "(`chronic worker orchestration`, `chronic worker review`) or `chronic dev up`"
            ) from None
        raise CommandFailed(f"could not read the benefit of {application_id}: {error}") from None


async def _update(application_id: str, action: Callable[[Handle], Awaitable[T]]) -> T:
    return await update_benefit(await temporal(), application_id, action)


async def update_benefit(
    client: Client, application_id: str, action: Callable[[Handle], Awaitable[T]]
) -> T:
    """Run an update on the benefit (CLI and hall); every refusal becomes one readable line.

    Raises:
        CommandFailed: the validator's words, no benefit, an ended one, or no worker.
    """

    async def ended(error: RPCError) -> CommandFailed | None:
        if error.status != RPCStatusCode.NOT_FOUND:
            return None
        try:
            view = await _view(client, application_id)
        except CommandFailed:
            return _no_benefit(application_id)
        return CommandFailed(
            f"the benefit of {application_id} is {view.status}: nothing more can be changed"
        )

    return await run_update(
        _handle(client, application_id),
        action,
        subject=f"the change of {application_id}",
        hint="start the workers or `chronic dev up`",
        gone=ended,
    )


def _print(view: BenefitView) -> None:
    zone = zone_of(view.region)
    until = str(view.valid_to) if view.valid_to else "long-term"
    console.print(f"[bold]{view.application_id}[/]  benefit [bold]{view.status}[/]")
    console.print(f"  disease    {escape(disease_label(view.region, view.disease_code))}")
    console.print(f"  valid      {view.valid_from} → {until}")
    console.print(
        f"  hospital   {view.designated_hospital_code} {escape(view.designated_hospital_name)}"
    )
    console.print(f"  pharmacy   {view.pharmacy_code or '-'}")
    limit = "unlimited" if view.changes_per_year is None else f"at most {view.changes_per_year}"
    used = ", ".join(f"{kind} {n}" for kind, n in view.changes_this_year.items())
    console.print(f"  changes    {limit} per calendar year; this year: {used or 'none'}")
    for kind, when in view.next_change_from.items():
        console.print(f"             next {kind} change possible from {when}")
    if view.in_hospital_since is not None:
        console.print(f"  in hospital since {view.in_hospital_since}: suspended")
    if view.reminder_at is not None:
        console.print(f"  reminder   {local(view.reminder_at, zone)}")
    console.print(f"  next       {escape(view.waiting_for)}")


def _day(value: datetime) -> date:
    return value.date()


@app.command()
def show(
    application: ApplicationArg,
    as_json: Annotated[bool, typer.Option("--json", help="The benefit as JSON.")] = False,
) -> None:
    """The benefit of APP: status, validity, designated hospital and pharmacy, changes left."""

    async def main() -> BenefitView:
        return await _view(await temporal(), application)

    view = run(main)
    if as_json:
        console.print_json(view.model_dump_json())
    else:
        _print(view)


def _change(application: str, kind: DesignationKind, code: str) -> None:
    async def main() -> BenefitView:
        action = ChangeDesignation(kind=kind, code=code.strip(), actor=_clerk())
        return await _update(
            application, lambda h: h.execute_update(BenefitWorkflow.change_designation, action)
        )

    view = run(main)
    name = view.designated_hospital_name if kind == DesignationKind.HOSPITAL else ""
    console.print(
        f"[bold green]changed[/] designated {kind.value} of {application} to {code} "
        f"{escape(name)}".rstrip()
        + "; the person is told by SMS"
    )


@app.command("change-hospital")
def change_hospital(
    application: ApplicationArg,
    hospital: Annotated[
        str, typer.Option("--hospital", "-H", metavar="H", help="The new designated hospital.")
    ],
) -> None:
    """Change the designated hospital of APP (at most the region's number per calendar year)."""
    _change(application, DesignationKind.HOSPITAL, hospital)


@app.command("change-pharmacy")
def change_pharmacy(
    application: ApplicationArg,
    pharmacy: Annotated[
        str, typer.Option("--pharmacy", "-P", metavar="P", help="The new designated pharmacy.")
    ],
) -> None:
    """Change the designated pharmacy of APP (the same yearly limit, counted apart)."""
    _change(application, DesignationKind.PHARMACY, pharmacy)


@app.command()
def admit(application: ApplicationArg, on: DateOption) -> None:
    """Record that the person of APP was admitted to hospital: the benefit is suspended."""

    async def main() -> BenefitView:
        stay = RecordStay(on=_day(on), actor=_clerk())
        return await _update(application, lambda h: h.execute_update(BenefitWorkflow.admit, stay))

    view = run(main)
    console.print(
        f"[bold]suspended[/] benefit of {application}: in hospital since {view.in_hospital_since}"
    )


@app.command()
def discharge(application: ApplicationArg, on: DateOption) -> None:
    """Record the discharge of the person of APP: the benefit is active again."""

    async def main() -> BenefitView:
        stay = RecordStay(on=_day(on), actor=_clerk())
        return await _update(
            application, lambda h: h.execute_update(BenefitWorkflow.discharge, stay)
        )

    run(main)
    console.print(f"[bold green]resumed[/] benefit of {application}: discharged on {_day(on)}")


@app.command()
def card(
    application: ApplicationArg,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="FILE", help="FILE.pdf or FILE.png."),
    ],
) -> None:
    """Write the benefit card (门诊慢病卡; Wuhan: 门诊重症待遇认定表) as PDF or PNG.

    It carries the person's name and ID number in full: it is theirs, to print or send to
    them; it is not kept anywhere else. Writing it is in the audit trail."""
    from chronic.certificate import CertificateError, card_fields, render_pdf, render_png
    from chronic.cli.output import database
    from chronic.settings import get_settings

    suffix = out.suffix.lower()
    if suffix not in (".pdf", ".png"):
        raise typer.BadParameter("FILE must end in .pdf or .png", param_hint="'--out'")

    async def main() -> str:
        from datetime import UTC

        from activities import audit
        from models.tables import Application

        async with database() as db, db.session() as session:
            row = await session.get(Application, application)
            if row is None:
                raise CommandFailed(f"no application {application}")
            try:
                fields = await card_fields(session, application, get_settings().policy(row.region))
                pdf = render_pdf(fields)
            except CertificateError as error:
                raise CommandFailed(str(error)) from None
            await audit.record(
                session,
                step_key=f"{application}:card:{datetime.now(UTC).isoformat()}",
                application_id=application,
                actor=operator(),
                action="benefit_card_written",
                at=datetime.now(UTC),
                format=suffix.lstrip("."),
            )
        out.write_bytes(render_png(pdf) if suffix == ".png" else pdf)
        return fields.title

    title = run(main)
    console.print(f"written {out} ({title} of {application})")

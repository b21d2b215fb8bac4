"""`chronic office …` and `chronic hospital …`: the clerk's and the assessment hospital's steps.

Regions whose process has office acceptance, a hospital assessment and office confirmation
(Wuhan; Jilin's assessment hospitals) act through these. Each action is an Update of the
application workflow; its validator refuses an action out of turn, a hospital that is not the
application's assessor or a text with personal data, and the command prints that refusal as it
is and exits 1. The clerk acts as ``clerk:<name>`` (``CHRONIC_OPERATOR``, else the login name),
which the audit trail records.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape

from chronic.actor import clerk
from chronic.cli.output import (
    ApplicationArg,
    CommandFailed,
    approval,
    console,
    local,
    next_line,
    office_region,
    run,
    send_update,
    settled_progress,
    temporal,
    zone_of,
)
from models.messages import (
    DecisionView,
    HospitalOpinion,
    OfficeAccept,
    OfficeConfirm,
    OfficeReturn,
    Progress,
    ScheduleExamination,
)
from workflows.application import ApplicationWorkflow

office = typer.Typer(
    no_args_is_help=True,
    help="The office's steps: accept or return an application, confirm or refuse the opinion.",
)
hospital = typer.Typer(
    no_args_is_help=True,
    help="An assessment hospital's steps: schedule an on-site examination, give the opinion.",
)

HospitalOption = Annotated[
    str, typer.Option("--hospital", "-H", metavar="H", help="Your hospital's code, e.g. W01.")
]


@office.command()
def accept(
    application: ApplicationArg,
    assessment_hospital: Annotated[
        str | None,
        typer.Option(
            "--hospital",
            "-H",
            metavar="H",
            help="The assessment hospital the applicant must visit (track B); leave out where "
            "the diagnosing hospital assesses (Wuhan track A).",
        ),
    ] = None,
) -> None:
    """Accept APP (受理) and designate who assesses it."""

    async def main() -> Progress:
        action = OfficeAccept(clerk=clerk(), hospital=assessment_hospital)
        return await send_update(
            await temporal(),
            application,
            lambda h: h.execute_update(ApplicationWorkflow.office_accept, action),
        )

    progress = run(main)
    console.print(
        f"[bold green]accepted[/] {application}; assessed by {progress.assessment_hospital}"
    )


@office.command("return")
def return_(
    application: ApplicationArg,
    reasons: Annotated[
        str,
        typer.Option("--reasons", "-r", help="What is wrong and what to bring, in plain words."),
    ],
) -> None:
    """Return APP with the reasons (退回); the applicant is told by SMS and may resubmit."""

    async def main() -> Progress:
        action = OfficeReturn(clerk=clerk(), reasons=reasons)
        return await send_update(
            await temporal(),
            application,
            lambda h: h.execute_update(ApplicationWorkflow.office_return, action),
        )

    progress = run(main)
    console.print(f"[bold]returned[/] {application}: {escape(reasons)}")
    console.print(f"next  {progress.waiting_for}")


@office.command()
def confirm(
    application: ApplicationArg,
    refuse: Annotated[
        str | None,
        typer.Option("--refuse", metavar="REASON", help="Refuse instead, with the reason."),
    ] = None,
) -> None:
    """Confirm the assessment of APP (登记建档, the benefit is issued), or refuse it."""

    async def main() -> tuple[DecisionView, Progress | None]:
        client = await temporal()
        action = OfficeConfirm(clerk=clerk(), confirm=refuse is None, reason=refuse or "")
        decision = await send_update(
            client,
            application,
            lambda h: h.execute_update(ApplicationWorkflow.office_confirm, action),
        )
        return decision, await settled_progress(
            client, application, lambda p: p.finished_at is None
        )

    decision, progress = run(main)
    verb = "approved" if decision.decision == "approve" else "rejected"
    console.print(f"[bold]{verb}[/] {application} by {decision.expert}")
    console.print(next_line(progress, application))


@hospital.command()
def examine(
    application: ApplicationArg,
    hospital_code: HospitalOption,
    at: Annotated[
        datetime,
        typer.Option("--at", formats=["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"], help="Local time."),
    ],
    place: Annotated[str, typer.Option("--place", help="Where the applicant goes.")],
) -> None:
    """Ask the applicant of APP in for an on-site examination; they are told by SMS."""
    zone = zone_of(office_region())

    async def main() -> Progress:
        action = ScheduleExamination(
            hospital=hospital_code, at=at.replace(tzinfo=zone), place=place
        )
        return await send_update(
            await temporal(),
            application,
            lambda h: h.execute_update(ApplicationWorkflow.schedule_examination, action),
        )

    progress = run(main)
    exam = progress.examination
    if exam is None:
        raise CommandFailed(f"the examination of {application} was not recorded")
    console.print(
        f"[bold]examination[/] of {application}: {local(exam.at, zone)} at {escape(exam.place)}; "
        "the applicant is told by SMS"
    )


@hospital.command()
def opinion(
    application: ApplicationArg,
    hospital_code: HospitalOption,
    text: Annotated[str, typer.Option("--opinion", "-o", help="The assessment's opinion.")] = "",
    approve: Annotated[bool, typer.Option("--approve", help="The disease is confirmed.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="It is not (say why).")] = False,
) -> None:
    """Give the assessment of APP (鉴定意见): exactly one of --approve / --reject."""
    approve = approval(approve, reject)

    async def main() -> tuple[DecisionView, Progress | None]:
        client = await temporal()
        action = HospitalOpinion(hospital=hospital_code, approve=approve, opinion=text)
        decision = await send_update(
            client,
            application,
            lambda h: h.execute_update(ApplicationWorkflow.hospital_opinion, action),
        )
        return decision, await settled_progress(
            client, application, lambda p: p.stage == "hospital_assessment"
        )

    decision, progress = run(main)
    console.print(f"[bold]{decision.decision}[/] {application} by {decision.expert}")
    console.print(next_line(progress, application))

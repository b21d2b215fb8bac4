"""`chronic admin …`: the office's operators get a stuck or broken application moving or closed.

- ``close APP --reason`` — asks the workflow to close (Update ``close``); a workflow that does
  not answer (its workflow task keeps failing) is terminated and its row closed the way the
  reconciler does it, with the CLOSED SMS;
- ``retry APP`` — resets a running workflow to its last completed workflow task (after a bug
  was fixed and deployed, or to give a stuck activity fresh attempts);
- ``assign APP --expert E`` — hands a case whose expert pool is exhausted to an expert;
- ``notices [--all]`` — what the office's desk must act on;
- ``stuck`` — running applications that make no progress, why, and what to do.

Every action is recorded in the audit trail as ``operator:<name>`` (``CHRONIC_OPERATOR`` or
the login name) with its reason.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from chronic.cli.output import (
    ApplicationArg,
    CommandFailed,
    console,
    database,
    describe,
    handle_of,
    local,
    office_region,
    operator_reason,
    refusal,
    run,
    send_update,
    temporal,
    zone_of,
)
from models.messages import AssignExpert, CloseApplication
from workflows.application import ApplicationWorkflow

if TYPE_CHECKING:
    from chronic.db import Database

app = typer.Typer(
    no_args_is_help=True,
    help="Operators: close, retry or assign a stuck application; notices; stuck cases.",
)

ANSWER_TIMEOUT = timedelta(seconds=10)
"""How long `admin close` / `admin assign` wait for the workflow to answer its Update."""
STUCK_ATTEMPTS = 3
"""An activity with more failed attempts than this is listed by `admin stuck`."""
WORKFLOW_TYPE = "ApplicationWorkflow"


def _status_name(description: WorkflowExecutionDescription) -> str:
    status = description.status
    return status.name.lower() if status is not None else "unknown"


# ---- close ------------------------------------------------------------------------------------


@app.command()
def close(
    application: ApplicationArg,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why (audit trail; the applicant's SMS).")
    ],
) -> None:
    """Close APP: the workflow closes it; one that does not answer is terminated and closed."""

    async def main() -> str:
        from chronic.actor import operator, record_action
        from chronic.closing import task_failure

        why, actor = operator_reason(reason), operator()
        client = await temporal()
        description = await describe(client, application)
        async with database() as db:
            if description.status != WorkflowExecutionStatus.RUNNING:
                done, via = await _close_ended(db, client, application, description, actor, why)
            elif (
                await task_failure(client, description) is None
                and (answered := await _ask_to_close(client, application, actor, why)) is not None
            ):
                done, via = answered, "update"
            else:
                done, via = await _terminate_and_close(db, client, application, actor, why)
            async with db.session() as session:
                await record_action(session, "admin_close", application, reason=why, via=via)
        return done

    console.print(run(main))


async def _ask_to_close(client: Client, application_id: str, actor: str, why: str) -> str | None:
    """The workflow's own close (Update ``close``); None when it does not answer in time."""
    try:
        progress = await handle_of(client, application_id).execute_update(
            ApplicationWorkflow.close,
            CloseApplication(actor=actor, reason=why),
            rpc_timeout=ANSWER_TIMEOUT,
        )
    except WorkflowUpdateFailedError as error:
        raise CommandFailed(f"{application_id} refused to close: {refusal(error)}") from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        return None
    except RPCError as error:
        if error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return None
        raise CommandFailed(f"Temporal refused to close {application_id}: {error}") from None
    return (
        f"[bold]closed[/] {application_id} by its process ({progress.status}): "
        f"{escape(why)}; the applicant is told by SMS"
    )


async def _terminate_and_close(
    db: Database, client: Client, application_id: str, actor: str, why: str
) -> tuple[str, str]:
    from chronic.closing import close_application

    handle = client.get_workflow_handle(application_id)
    try:
        await handle.terminate(reason=f"{actor}: {why}")
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise CommandFailed(
                f"Temporal refused to terminate {application_id}: {error}"
            ) from None
    await close_application(
        db,
        client,
        application_id,
        reason=f"closed by {actor}: {why} (the process did not answer and was terminated)",
        sms_reason=why,
        actor=actor,
    )
    return (
        f"[bold]terminated and closed[/] {application_id}: its process did not answer; the row "
        "is closed and the applicant gets the CLOSED SMS"
    ), "terminate"


async def _close_ended(
    db: Database,
    client: Client,
    application_id: str,
    description: WorkflowExecutionDescription,
    actor: str,
    why: str,
) -> tuple[str, str]:
    """The workflow has ended: close the row if it is still open (what the reconciler does)."""
    from chronic.closing import close_application, ending_of

    ending = await ending_of(client, description)
    if ending is None:
        raise CommandFailed(f"{application_id} is {_status_name(description)}: try again shortly")
    closed = await close_application(
        db,
        client,
        application_id,
        reason=f"{ending.reason}; closed by {actor}: {why}",
        sms_reason=why,
        actor=actor,
    )
    if not closed:
        raise CommandFailed(
            f"application {application_id} is finished ({_status_name(description)}) and its "
            "row is closed already: nothing to do"
        )
    return f"[bold]closed[/] {application_id}: {escape(ending.reason)}", "row"


# ---- retry ------------------------------------------------------------------------------------


@app.command()
def retry(
    application: ApplicationArg,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why (audit trail, reset reason).")
    ] = "retry after a fix was deployed",
) -> None:
    """Reset APP to its last completed workflow task: the failing step runs again.

    For a running application whose workflow task keeps failing (a bug since fixed and
    deployed) or whose activity is stuck in retries.
    """

    async def main() -> str:
        from chronic.actor import operator, record_action
        from chronic.closing import last_completed_task

        why, actor = operator_reason(reason), operator()
        client = await temporal()
        description = await describe(client, application)
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise CommandFailed(
                f"application {application} is finished ({_status_name(description)}): there "
                f"is nothing to retry; see `chronic status {application}`"
            )
        event = await last_completed_task(client, application, description.run_id)
        if event is None:
            raise CommandFailed(
                f"{application} has no completed workflow task to go back to: its first task "
                "is failing; fix and deploy the orchestration worker, it is retried by itself"
            )
        response = await client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(
                    workflow_id=application, run_id=description.run_id or ""
                ),
                reason=f"chronic admin retry by {actor}: {why}",
                workflow_task_finish_event_id=event.event_id,
                request_id=str(uuid.uuid4()),
            )
        )
        async with database() as db, db.session() as session:
            await record_action(
                session,
                "admin_retry",
                application,
                reason=why,
                reset_to_event=event.event_id,
                old_run=description.run_id,
                new_run=response.run_id,
            )
        when = event.event_time.ToDatetime(tzinfo=UTC)
        return (
            f"[bold]reset[/] {application} to event {event.event_id} (workflow task completed "
            f"{local(when, zone_of(office_region()))}); new run {response.run_id}\n"
            f"  the steps after it run again; follow with `chronic status {application}`"
        )

    console.print(run(main))


# ---- assign -----------------------------------------------------------------------------------


@app.command()
def assign(
    application: ApplicationArg,
    expert: Annotated[str, typer.Option("--expert", "-e", metavar="E", help="Expert code.")],
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why (audit trail).")
    ] = "expert pool exhausted",
) -> None:
    """Offer APP, whose expert pool is exhausted, to expert E (Update ``assign_expert``)."""

    async def main() -> str:
        from chronic.actor import operator, record_action

        why, actor = operator_reason(reason), operator()
        client = await temporal()
        await send_update(
            client,
            application,
            lambda handle: handle.execute_update(
                ApplicationWorkflow.assign_expert, AssignExpert(actor=actor, expert=expert)
            ),
        )
        async with database() as db, db.session() as session:
            await record_action(session, "admin_assign", application, reason=why, expert=expert)
        return f"[bold green]assigned[/] {application} to {escape(expert)}"

    console.print(run(main))


# ---- notices ----------------------------------------------------------------------------------


@app.command()
def notices(
    show_all: Annotated[bool, typer.Option("--all", help="Resolved notices too.")] = False,
) -> None:
    """What the office's desk must act on (open notices; --all for every one)."""

    async def main() -> list[Any]:
        import sqlalchemy as sa
        from sqlmodel import col

        from models.tables import OfficeNotice

        query = sa.select(OfficeNotice).order_by(col(OfficeNotice.at))
        if not show_all:
            query = query.where(col(OfficeNotice.resolved_at).is_(None))
        async with database() as db, db.session() as session:
            return list(await session.scalars(query))

    rows = run(main)
    if not rows:
        console.print("no open notices" if not show_all else "no notices")
        return
    zone = zone_of(office_region())
    for notice in rows:
        state = f"resolved {local(notice.resolved_at, zone)}" if notice.resolved_at else "open"
        console.print(
            f"  #{notice.id} {local(notice.at, zone)} {notice.kind} "
            f"{notice.application_id or '-'} ({state}): {escape(notice.message)}"
        )


# ---- stuck ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stuck:
    application_id: str
    problem: str
    to_do: str


@app.command()
def stuck(
    attempts: Annotated[
        int, typer.Option("--attempts", help="List activities with more failed attempts.")
    ] = STUCK_ATTEMPTS,
) -> None:
    """Running applications that make no progress: a failing workflow task or activity."""

    async def main() -> list[Stuck]:
        from chronic.closing import activity_failures, task_failure

        client = await temporal()
        query = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
        found: list[Stuck] = []
        zone = zone_of(office_region())
        async for execution in client.list_workflows(query):
            try:
                description = await describe(client, execution.id)
            except CommandFailed:
                continue  # finished and gone between the listing and now
            failing = await task_failure(client, description)
            if failing is not None:
                since = f" since {local(failing.since, zone)}" if failing.since else ""
                found.append(
                    Stuck(
                        execution.id,
                        f"workflow task failing{since} ({failing.attempts} attempts): "
                        f"{failing.message}",
                        f"fix and deploy, then `chronic admin retry {execution.id}`; or "
                        f"`chronic admin close {execution.id} --reason …`",
                    )
                )
                continue
            for activity in await activity_failures(client, description, min_attempts=attempts):
                found.append(
                    Stuck(
                        execution.id,
                        f"activity {activity.activity} failed {activity.attempts - 1} times: "
                        f"{activity.message}",
                        "it is retried by itself once the cause is gone (database, provider); "
                        f"after a fix, `chronic admin retry {execution.id}` retries it now",
                    )
                )
        return found

    found = run(main)
    if not found:
        console.print("nothing stuck: every running application makes progress")
        return
    console.print(f"[bold]{len(found)} stuck[/]")
    for item in found:
        console.print(f"  {item.application_id}  {escape(item.problem)}")
        console.print(f"      → {escape(item.to_do)}")

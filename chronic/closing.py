"""Closing an application from outside its workflow, and reading why a workflow is unwell.

Used by the reconciler (a workflow that ended without closing its row) and by the operators'
commands (`chronic admin close` on a workflow that does not answer, `admin stuck`, `admin
retry`, `chronic status`). One function closes: the row gets status ``closed``, a reason,
``closed_at`` and an audit event, in one transaction, with a status seq above anything the
workflow writes; the applicant gets the CLOSED SMS. Every step is idempotent, so two closers
at once (two reconcilers, a reconciler and an operator) close once and send one SMS.

Failure messages in Temporal are encrypted by the payload codec: they are decrypted here
through the client's data converter, and only their first line is kept (never a stack trace).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus

from activities.review import apply_status
from chronic.db import Database
from chronic.sms.delivery import start_delivery
from models.domain import ApplicationStatus, ReviewStage
from models.messages import CLOSE_SEQ, StatusChange
from models.notifications import closed_sms
from models.text import clip

RECONCILER = "system:reconciler"


async def close_application(
    db: Database,
    client: Client,
    application_id: str,
    *,
    reason: str,
    sms_reason: str,
    actor: str,
    at: datetime | None = None,
) -> bool:
    """Close the row of an application whose workflow has ended, and tell the applicant.

    The SMS is started first (idempotent), so a crash between the two steps leaves an open
    row that the next pass closes, never a closed row whose applicant was not told.
    Returns True when this call closed the row, False when it was closed already.
    """
    await start_delivery(client, closed_sms(application_id, sms_reason))
    change = StatusChange(
        application_id=application_id,
        status=ApplicationStatus.CLOSED,
        stage=ReviewStage.DONE,
        at=at or datetime.now(UTC),
        step="closed:outside",
        seq=CLOSE_SEQ,
        actor=actor,
        reason=clip(reason, 2000),
        closed=True,
    )
    async with db.session() as session:
        return await apply_status(session, change, only_open=True)


# ---- why a workflow ended -----------------------------------------------------------------


@dataclass(frozen=True)
class Ending:
    """What happened to a workflow that ended without closing its row."""

    reason: str
    """For the row and the operator: what happened, in one line."""
    sms_reason: str
    """For the applicant: short, Chinese, no internals."""


_SMS_REASONS = {
    WorkflowExecutionStatus.TERMINATED: "办理流程已由经办人员终止",
    WorkflowExecutionStatus.FAILED: "办理流程因系统故障中止",
    WorkflowExecutionStatus.TIMED_OUT: "办理流程超出办理时限",
    WorkflowExecutionStatus.CANCELED: "办理流程已被取消",
    WorkflowExecutionStatus.COMPLETED: "办理流程异常结束",
}


async def ending_of(client: Client, description: WorkflowExecutionDescription) -> Ending | None:
    """Why the described workflow ended; None while it runs (or continued as new)."""
    status = description.status
    if status is None or status not in _SMS_REASONS:
        return None
    sms = _SMS_REASONS[status]
    close = await _close_event(client, description.id, description.run_id)
    if status == WorkflowExecutionStatus.TERMINATED:
        attrs = close.workflow_execution_terminated_event_attributes if close else None
        detail = attrs.reason.strip() if attrs and attrs.reason else ""
        reason = "the process was terminated by an operator" + (f": {detail}" if detail else "")
    elif status == WorkflowExecutionStatus.FAILED:
        failure = close.workflow_execution_failed_event_attributes.failure if close else None
        message = await failure_message(client, failure) if failure else "no message"
        reason = f"the process failed: {message}"
    elif status == WorkflowExecutionStatus.TIMED_OUT:
        reason = "the process ran past its time limit (timed out)"
    elif status == WorkflowExecutionStatus.CANCELED:
        reason = "the process was cancelled"
    else:
        reason = "the process ended without recording its result"
    return Ending(reason=clip(reason, 500), sms_reason=sms)


async def _close_event(client: Client, workflow_id: str, run_id: str | None) -> HistoryEvent | None:
    async for event in _reverse_history(client, workflow_id, run_id, page_size=1):
        return event
    return None


async def _reverse_history(
    client: Client, workflow_id: str, run_id: str | None, *, page_size: int = 100
) -> Any:
    """The events of a run from the newest back (reads only as far as the caller goes)."""
    token = b""
    while True:
        response = await client.workflow_service.get_workflow_execution_history_reverse(
            GetWorkflowExecutionHistoryReverseRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id or ""),
                maximum_page_size=page_size,
                next_page_token=token,
            )
        )
        for event in response.history.events:
            yield event
        token = response.next_page_token
        if not token:
            return


async def failure_message(client: Client, failure: Failure) -> str:
    """The first line of a failure's message, decrypted (never its stack trace)."""
    try:
        error = await client.data_converter.decode_failure(failure)
        text = str(getattr(error, "message", None) or error)
    except Exception:  # an undecodable failure still gets a line
        text = failure.message
    first = text.strip().splitlines()[0] if text.strip() else "no message"
    return clip(first, 300)


# ---- a workflow that cannot make progress ---------------------------------------------------


@dataclass(frozen=True)
class TaskFailure:
    """A running workflow whose workflow task keeps failing (a bug, a broken deployment)."""

    since: datetime | None
    attempts: int
    message: str


@dataclass(frozen=True)
class ActivityFailure:
    """An activity of a running workflow that keeps failing its attempts."""

    activity: str
    attempts: int
    message: str
    next_attempt: datetime | None


async def task_failure(
    client: Client, description: WorkflowExecutionDescription
) -> TaskFailure | None:
    """The failing workflow task of a running workflow, or None when it makes progress.

    Failing when the pending workflow task is on attempt > 1, or the last workflow task event
    of the history is a WorkflowTaskFailed (Temporal records only the first failure of a
    streak, so that event's time is when the trouble started).
    """
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    pending = description.raw_description.pending_workflow_task
    attempts = (
        pending.attempt if description.raw_description.HasField("pending_workflow_task") else 0
    )
    async for event in _reverse_history(client, description.id, description.run_id, page_size=50):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failure = event.workflow_task_failed_event_attributes.failure
            return TaskFailure(
                since=event.event_time.ToDatetime(tzinfo=UTC),
                attempts=max(attempts, 1),
                message=await failure_message(client, failure),
            )
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            break
    if attempts > 1:
        return TaskFailure(since=None, attempts=attempts, message="no failure recorded yet")
    return None


async def activity_failures(
    client: Client, description: WorkflowExecutionDescription, *, min_attempts: int
) -> list[ActivityFailure]:
    """Pending activities that failed at least ``min_attempts`` times, with the last failure."""
    found: list[ActivityFailure] = []
    for pending in description.raw_description.pending_activities:
        if pending.attempt <= min_attempts or not pending.HasField("last_failure"):
            continue
        next_attempt = (
            pending.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
            if pending.HasField("next_attempt_schedule_time")
            else None
        )
        found.append(
            ActivityFailure(
                activity=pending.activity_type.name,
                attempts=pending.attempt,
                message=await failure_message(client, pending.last_failure),
                next_attempt=next_attempt,
            )
        )
    return found


async def last_completed_task(
    client: Client, workflow_id: str, run_id: str | None
) -> HistoryEvent | None:
    """The newest WorkflowTaskCompleted event of the run (where a reset goes back to)."""
    async for event in _reverse_history(client, workflow_id, run_id):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return event
    return None


def older_than(moment: datetime, age: timedelta) -> bool:
    return moment <= datetime.now(UTC) - age

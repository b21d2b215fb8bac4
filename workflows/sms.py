"""SMS delivery beside the process: retried until it is sent, never a gate, never dropped.

A workflow hands a message to :class:`Deliveries`, which runs the ``send_sms`` activity on the
notification task queue beside the run, one message after the other in the order handed over,
with capped exponential backoff and no attempt limit. The run does not wait for it, so a dead
notification worker or a provider outage never holds an application in intake. The run waits
for its deliveries only when everything else is done (before it ends, fails, is cancelled or
continues as new): the application has ended when the person is told.

A send that cannot succeed (a non-retryable error: an invalid number, a missing recipient, bad
template values) leaves a failed outbox row with its reason, which ``chronic sms list
--failed`` shows and ``chronic sms resend`` sends again once the data is fixed.

Exactly one SMS per message: the outbox row under the message's dedup key is sent at most once,
whichever run (a continued or reset one) asks again.

Until issue 9 a delivery was a child workflow (:class:`SmsDelivery`, ID ``sms:<dedup key>``,
parent-close ABANDON). An activity costs the server a quarter of that: no second execution,
no visibility records, two fewer workflow tasks per message. Runs started before the change
keep their children on replay (``workflow.patched``); ``SmsDelivery`` itself remains what a
client starts to send one message (``chronic sms resend``, the reconciler's closing SMS).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from models.notifications import SmsRequest, SmsResult
    from models.roles.notification import NotificationRole
    from models.roles.orchestration import QUEUE as APPLICATIONS
    from workflows.patches import NO_GENERATION, Generation
    from workflows.steps import cause

WORKFLOW_TYPE = "SmsDelivery"
"""The workflow type name (the UI's ``WorkflowType`` filter)."""

SEND_TIMEOUT = timedelta(seconds=60)
"""Start-to-close of one ``send_sms`` attempt (the provider call and two short transactions)."""

SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=0,  # unlimited: a message is never dropped for a long outage
)
"""Retries of ``send_sms``: 5 s, 10 s, 20 s … then every 10 minutes, until it is sent."""

AS_ACTIVITY = "sms-beside-as-activity"
"""The patch that made a delivery an activity of the run instead of a child workflow."""

SEND_FAILED = "SmsNotSent"
"""Failure type of an SmsDelivery that ended without sending (the activity's reason inside)."""


def workflow_id(dedup_key: str) -> str:
    """The SmsDelivery workflow ID of the message with ``dedup_key``: ``sms:<dedup key>``."""
    return f"sms:{dedup_key}"


def summary(request: SmsRequest) -> str:
    """The static summary the UI shows for the delivery (``SMS approved``)."""
    return f"SMS {request.template.value}"


@workflow.defn(name=WORKFLOW_TYPE)
class SmsDelivery:
    """Send one SMS, retrying until the provider accepts it or the send cannot succeed."""

    @workflow.run
    async def run(self, request: SmsRequest) -> SmsResult:
        """Run ``send_sms`` until sent.

        Raises:
            ApplicationError: type ``SmsNotSent``, non-retryable, when ``send_sms`` failed with a
                non-retryable error; the message carries the activity's reason and the details
                its failure type (``SmsRecipientMissing``, ``SmsRequestInvalid``,
                ``SmsSendError``).
        """
        workflow.set_current_details(f"sending **{request.template.value}** ({request.dedup_key})")
        try:
            result = await workflow.execute_activity_method(
                NotificationRole.send_sms,
                request,
                task_queue=NotificationRole.QUEUE,
                start_to_close_timeout=SEND_TIMEOUT,
                retry_policy=SEND_RETRY,
                summary=summary(request),
            )
        except ActivityError as error:
            cause = error.cause
            if not isinstance(cause, ApplicationError):
                raise  # cancelled: the delivery ends cancelled, not failed
            workflow.set_current_details(f"**not sent**: {cause.message}")
            raise ApplicationError(
                f"SMS {request.template.value} not sent: {cause.message}",
                {"cause": cause.type or "ApplicationError", "dedup_key": request.dedup_key},
                type=SEND_FAILED,
                non_retryable=True,
            ) from None
        again = ", already sent before" if result.duplicate else ""
        workflow.set_current_details(f"sent (outbox row {result.outbox_id}{again})")
        return result


async def _start_child(request: SmsRequest) -> Awaitable[SmsResult] | None:
    """A run started before the patch: its deliveries stay children on replay. None when the
    child was started already (a replayed, reset or continued-as-new run calling again)."""
    try:
        return await workflow.start_child_workflow(
            SmsDelivery.run,
            request,
            id=workflow_id(request.dedup_key),
            task_queue=APPLICATIONS,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=summary(request),
        )
    except WorkflowAlreadyStartedError:
        workflow.logger.info(
            "SMS %s (%s) already handed to its delivery", request.template, request.dedup_key
        )
        return None


class Deliveries:
    """The SMS one run hands off: sent beside the run, in the order they were handed over,
    each retried until sent; :meth:`done` waits for them before the run ends.

    In order, because a person reads them in order: "rejected" must not arrive before
    "received" because the notification worker happened to take the second first. A message
    waits for the one before it only, never the run; one that cannot be sent (a bad number)
    does not hold back the next.
    """

    def __init__(self, generation: Generation = NO_GENERATION) -> None:
        self._generation = generation
        self._pending: list[tuple[str, Awaitable[Any]]] = []
        self._last: asyncio.Task[SmsResult] | None = None

    async def send(self, request: SmsRequest) -> None:
        """Hand ``request`` over and go on."""
        if self._generation.applies(AS_ACTIVITY):
            self._last = asyncio.create_task(self._in_turn(self._last, request))
            self._pending.append((request.dedup_key, self._last))
            return
        delivery = await _start_child(request)
        if delivery is not None:
            self._pending.append((request.dedup_key, delivery))

    @staticmethod
    async def _in_turn(before: asyncio.Task[SmsResult] | None, request: SmsRequest) -> SmsResult:
        if before is not None:
            # Its outcome is reported by done(); here only its turn matters.
            await asyncio.wait([before])
        return await workflow.execute_activity_method(
            NotificationRole.send_sms,
            request,
            task_queue=NotificationRole.QUEUE,
            start_to_close_timeout=SEND_TIMEOUT,
            retry_policy=SEND_RETRY,
            summary=summary(request),
        )

    async def done(self) -> None:
        """Wait until every message is sent, or has failed for good (its failed outbox row
        says why; ``chronic sms resend`` sends it again)."""
        for dedup_key, delivery in self._pending:
            try:
                await delivery
            except (ActivityError, ChildWorkflowError) as error:
                workflow.logger.warning("SMS %s not sent: %s", dedup_key, cause(error))
        self._pending.clear()


__all__ = [
    "AS_ACTIVITY",
    "SEND_FAILED",
    "SEND_RETRY",
    "WORKFLOW_TYPE",
    "Deliveries",
    "SmsDelivery",
    "workflow_id",
]

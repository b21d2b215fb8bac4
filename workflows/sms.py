"""SMS delivery beside the process: one small workflow per message, retried until it is sent.

A notification is never a gate and never dropped. The application workflow does not await the
SMS: :func:`send_beside` starts an :class:`SmsDelivery` child with the parent-close policy
ABANDON and returns as soon as the child has started, so a dead notification worker or a
provider outage never holds an application in intake, and the message outlives its parent.

``SmsDelivery`` runs the ``send_sms`` activity on the notification task queue with capped
exponential backoff and no attempt limit: a throttled or unreachable provider is retried until
the message goes out. A send that cannot succeed (a non-retryable error: an invalid number, a
missing recipient, bad template values) fails the workflow with the reason, so the Temporal UI
lists it as Failed (``WorkflowType="SmsDelivery" AND ExecutionStatus="Failed"``); the activity
has already recorded the outbox row as failed with the same reason, and
``chronic sms resend`` starts the delivery again once the data is fixed.

Exactly one SMS per message: the workflow ID is ``sms:<dedup key>`` (a second start with the
same key finds the first) and the outbox row under the same dedup key is sent at most once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from models.notifications import SmsRequest, SmsResult
    from workers import queues

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
            result = await workflow.execute_activity(
                "send_sms",
                request,
                result_type=SmsResult,
                task_queue=queues.NOTIFICATION,
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


async def send_beside(request: SmsRequest) -> None:
    """Start the SMS delivery of ``request`` beside the calling workflow, and return at once.

    Call it from a workflow. The SmsDelivery child (ID ``sms:<dedup key>``) is abandoned when
    the caller closes, so it keeps retrying after the application has finished. A child with
    that ID already started or already closed (a replayed, reset or continued-as-new parent
    calling again) counts as success: calling twice with one dedup key never sends twice.
    """
    try:
        await workflow.start_child_workflow(
            SmsDelivery.run,
            request,
            id=workflow_id(request.dedup_key),
            task_queue=queues.APPLICATIONS,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            # A closed delivery with this ID is not run again from a workflow; an operator
            # re-runs a failed one with `chronic sms resend`.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=summary(request),
        )
    except WorkflowAlreadyStartedError:
        workflow.logger.info(
            "SMS %s (%s) already handed to its delivery", request.template, request.dedup_key
        )


__all__ = [
    "SEND_FAILED",
    "SEND_RETRY",
    "WORKFLOW_TYPE",
    "SmsDelivery",
    "send_beside",
    "workflow_id",
]

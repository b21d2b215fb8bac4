"""Starting an SMS delivery from a client: operators' commands and reconcilers.

Workflows hand messages to :class:`workflows.sms.Deliveries` (``send_sms`` activities beside
the run); code outside a workflow uses :func:`start_delivery`, which starts an ``SmsDelivery``
workflow under the ID ``sms:<dedup key>``. Both end in ``send_sms``, whose outbox row under the
dedup key is sent at most once, so the two never deliver one message twice.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models.notifications import SmsAudience, SmsRequest, SmsTemplate
from models.tables import SmsOutbox
from workers import queues
from workflows.sms import SmsDelivery, summary, workflow_id


async def start_delivery(client: Client, request: SmsRequest) -> bool:
    """Start the SmsDelivery of ``request``; True when a new run started.

    A delivery that failed before is run again (ID reuse policy ALLOW_DUPLICATE_FAILED_ONLY);
    one that is running or completed is left alone and False is returned.
    """
    try:
        await client.start_workflow(
            SmsDelivery.run,
            request,
            id=workflow_id(request.dedup_key),
            task_queue=queues.APPLICATIONS,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            static_summary=summary(request),
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


ADDED_BY_ACTIVITY = (
    "application_id",
    "filing_id",
    "hospital_code",
    "person_id",
    "to_expert",
    "text",
)
"""Keys of an outbox row's params that ``send_sms`` adds; a rebuilt request leaves them out."""


def request_from_outbox(row: SmsOutbox, *, hospital_code: str | None = None) -> SmsRequest:
    """The ``SmsRequest`` an outbox row was written for: same dedup key, template, recipient
    and params (without what ``send_sms`` added), so a new delivery sends that very message.

    Args:
        row: The outbox row.
        hospital_code: The hospital of a hospital message whose row predates the hospital code
            being kept in its params.

    Raises:
        ValueError: the template is unknown, or a hospital message names no hospital.
    """
    params = dict(row.params or {})
    template = SmsTemplate(row.template)
    if template is SmsTemplate.SIGN_IN_CODE:
        raise ValueError(
            f"outbox row {row.id} is a one-time sign-in code: it is never sent again (it "
            "expires within minutes); the person asks for a new code in the hall"
        )
    expert_code = params.get("to_expert") if template.audience is SmsAudience.EXPERT else None
    if expert_code is not None:
        hospital_code = None
    elif row.application_id is None and row.filing_id is None:
        hospital_code = params.get("hospital_code") or hospital_code
        if not hospital_code:
            raise ValueError(f"outbox row {row.id} does not say which hospital it was for")
    else:
        hospital_code = None
    return SmsRequest(
        dedup_key=row.dedup_key,
        template=template,
        application_id=row.application_id,
        filing_id=row.filing_id,
        hospital_code=hospital_code,
        expert_code=expert_code,
        params={k: str(v) for k, v in params.items() if k not in ADDED_BY_ACTIVITY},
    )


__all__ = ["ADDED_BY_ACTIVITY", "request_from_outbox", "start_delivery"]

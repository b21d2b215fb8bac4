"""Starting an SMS delivery from a client: operators' commands and reconcilers.

Workflows use :func:`workflows.sms.send_beside`; code outside a workflow uses
:func:`start_sms`. Both start the same ``SmsDelivery`` workflow under the ID
``sms:<dedup key>``, so the two never deliver one message twice.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models.notifications import SmsRequest
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


async def start_sms(client: Client, request: SmsRequest) -> None:
    """Start the SmsDelivery of ``request`` unless it is running or completed already.

    A failed delivery with the same dedup key is started again; a running or completed one
    counts as success.
    """
    await start_delivery(client, request)


__all__ = ["start_delivery", "start_sms"]

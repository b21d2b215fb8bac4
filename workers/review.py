"""Review role: decision records, status changes, benefits, audit on the ``review`` queue.

Also the status writes of out-of-area filings (``record_filing_status``), and the benefit's:
its workflow started from the certificate (``start_benefit``, with this worker's client) and
each change written (``record_benefit_event``),
and the monthly expert statistic (``record_expert_month``) and audit sample
(``draw_audit_sample``).

The review worker also runs the reconciler (:mod:`chronic.reconciler`): once at start, then
every ``CHRONIC_RECONCILE_INTERVAL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.benefit import BenefitActivities
from activities.filing import FilingRecordActivities
from activities.oversight import OversightActivities
from activities.review import ReviewActivities
from chronic.privacy import draw_key
from chronic.reconciler import Reconciler
from models.roles import served
from workers import queues
from workers.resources import Resources

TASK_QUEUE = queues.REVIEW


def build(client: Client, resources: Resources, *, graceful_shutdown: timedelta) -> Worker:
    review = ReviewActivities(resources.database())
    filing = FilingRecordActivities(resources.database())
    oversight = OversightActivities(resources.database(), draw_key=draw_key(resources.settings))
    benefit = BenefitActivities(resources.database(), client)
    return Worker(
        client,
        task_queue=TASK_QUEUE,
        activities=served(review, filing, oversight, benefit),
        graceful_shutdown_timeout=graceful_shutdown,
    )


@asynccontextmanager
async def alongside(resources: Resources) -> AsyncIterator[None]:
    """The reconciler loop, for as long as the worker polls."""
    settings = resources.settings
    reconciler = Reconciler(resources.database(), resources.client(), settings)
    task = asyncio.create_task(
        reconciler.run_forever(timedelta(seconds=settings.reconcile_interval_seconds)),
        name="reconciler",
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

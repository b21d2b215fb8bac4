"""Review role: decision records, status changes, benefits, audit on the ``review`` queue."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.review import ReviewActivities
from workers import queues
from workers.resources import Resources

TASK_QUEUE = queues.REVIEW


def build(client: Client, resources: Resources, *, graceful_shutdown: timedelta) -> Worker:
    review = ReviewActivities(resources.database())
    return Worker(
        client,
        task_queue=TASK_QUEUE,
        activities=[
            review.record_review,
            review.change_status,
            review.issue_benefit,
            review.office_notice,
        ],
        graceful_shutdown_timeout=graceful_shutdown,
    )

"""Assignment role: random expert draws, offers and strikes on the ``assignment`` queue."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.assignment import AssignmentActivities
from chronic.privacy import draw_key
from models.roles import served
from workers import queues
from workers.resources import Resources

TASK_QUEUE = queues.ASSIGNMENT


def build(client: Client, resources: Resources, *, graceful_shutdown: timedelta) -> Worker:
    assignment = AssignmentActivities(resources.database(), draw_key=draw_key(resources.settings))
    return Worker(
        client,
        task_queue=TASK_QUEUE,
        activities=served(assignment),
        graceful_shutdown_timeout=graceful_shutdown,
    )

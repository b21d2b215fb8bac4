"""Intake role: eligibility, catalogue, quota and materials checks on the ``intake`` queue.

Also the checks of out-of-area filings (``check_filing``) and the question other processes ask
of them (``valid_long_term_filing``): both read the register, as intake does.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.filing import FilingIntakeActivities
from activities.intake import IntakeActivities
from models.roles import served
from workers import queues
from workers.resources import Resources

TASK_QUEUE = queues.INTAKE


def build(client: Client, resources: Resources, *, graceful_shutdown: timedelta) -> Worker:
    intake = IntakeActivities(resources.database())
    filing = FilingIntakeActivities(resources.database())
    return Worker(
        client,
        task_queue=TASK_QUEUE,
        activities=served(intake, filing),
        graceful_shutdown_timeout=graceful_shutdown,
    )

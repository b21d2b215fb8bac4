"""Notification role: SMS and hospital notices on the ``notification`` queue.

The provider's rate limit is enforced by the task queue itself
(``max_task_queue_activities_per_second``), shared by every notification worker.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.notification import NotificationActivities
from chronic.sms.factory import build_gateway
from chronic.sms.settings import SmsSettings
from models.roles import served
from workers import queues
from workers.resources import Resources

TASK_QUEUE = queues.NOTIFICATION


def build(client: Client, resources: Resources, *, graceful_shutdown: timedelta) -> Worker:
    sms_settings = SmsSettings()
    notification = NotificationActivities(
        resources.database(), build_gateway(sms_settings), resources.settings.hall_url
    )
    return Worker(
        client,
        task_queue=TASK_QUEUE,
        activities=served(notification),
        max_task_queue_activities_per_second=resources.settings.sms_rate_per_second,
        graceful_shutdown_timeout=graceful_shutdown,
    )

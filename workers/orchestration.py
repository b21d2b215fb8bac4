"""Orchestration role: runs the workflow code (no I/O) on the ``applications`` queue."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from workers import queues
from workers.resources import Resources
from workers.sandbox import workflow_runner
from workflows import WORKFLOWS

TASK_QUEUE = queues.APPLICATIONS


def build(
    client: Client,
    resources: Resources,
    *,
    graceful_shutdown: timedelta,
    task_queue: str = TASK_QUEUE,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(resources.settings.workflow_sandbox),
        max_cached_workflows=resources.settings.workflow_cache_size,
        graceful_shutdown_timeout=graceful_shutdown,
    )

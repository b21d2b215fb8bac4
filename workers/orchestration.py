"""Orchestration role: runs the workflow code (no I/O) on the ``applications`` queue."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workers import queues
from workers.resources import Resources
from workflows import WORKFLOWS

TASK_QUEUE = queues.APPLICATIONS


def build(client: Client, resources: Resources, *, graceful_shutdown: timedelta) -> Worker:
    return Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=WORKFLOWS,
        # The free-text rule (models.text) reads python-stdnum's region tables on first use:
        # a deterministic, side-effect-free library, shared rather than re-imported per run.
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("stdnum")
        ),
        graceful_shutdown_timeout=graceful_shutdown,
    )

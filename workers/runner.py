"""Run one worker role until SIGINT/SIGTERM, then shut down gracefully.

On a stop signal the worker stops polling, lets in-flight activities finish for up to
``worker_shutdown_grace_seconds`` and then cancels them; Temporal retries cancelled or
unfinished activities on another worker, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Protocol

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from chronic.settings import Settings, get_settings
from chronic.temporal_client import connect
from workers import ROLES
from workers.resources import Resources

log = logging.getLogger("chronic.worker")


class RoleModule(Protocol):
    TASK_QUEUE: str

    def build(
        self, client: Client, resources: Resources, *, graceful_shutdown: timedelta
    ) -> Worker: ...


def role_module(role: str) -> RoleModule:
    """The module of ``role``; a clear error for an unknown one."""
    if role not in ROLES:
        raise LookupError(f"unknown worker role {role!r}; roles: {', '.join(ROLES)}")
    module: RoleModule = importlib.import_module(ROLES[role])
    return module


async def pollers(client: Client, role: str) -> list[PollerInfo]:
    """The processes polling ``role``'s task queue now (identity ``pid@host`` each)."""
    kind = (
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
        if role == "orchestration"
        else TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    )
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=role_module(role).TASK_QUEUE),
            task_queue_type=kind,
        )
    )
    return list(response.pollers)


METRICS_SLOTS = 16
"""Metrics ports tried per role: a second, third … process of one role on one machine takes
the next free slot instead of failing on the first one's port."""


def metrics_port(role: str, settings: Settings, slot: int = 0) -> int | None:
    """The Prometheus port of ``role``'s worker in ``slot`` (0: the first process of the role
    on this machine; slot k listens on base + k × len(ROLES) + N, so slots of different roles
    never collide), or None when metrics are off."""
    if settings.metrics_port_base is None:
        return None
    return settings.metrics_port_base + slot * len(ROLES) + list(ROLES).index(role)


def _runtime(role: str, settings: Settings) -> Runtime | None:
    """A Temporal runtime exporting the SDK's and the product's metrics for Prometheus, on the
    role's first free metrics slot (several processes of one role can run side by side)."""
    taken: list[str] = []
    for slot in range(METRICS_SLOTS):
        port = metrics_port(role, settings, slot)
        if port is None:
            return None
        address = f"{settings.metrics_host}:{port}"
        try:
            runtime = Runtime(
                telemetry=TelemetryConfig(
                    metrics=PrometheusConfig(bind_address=address),
                    global_tags={"role": role},
                )
            )
        except ValueError as error:  # "Failed starting Prometheus exporter: Address already in use"
            if "in use" not in str(error):
                raise
            taken.append(address)
            continue
        if taken:
            log.warning(
                "worker %s: metrics port(s) %s in use (another %s worker on this machine?)",
                role,
                ", ".join(taken),
                role,
            )
        log.info("worker %s metrics on http://%s/metrics", role, address)
        return runtime
    raise RuntimeError(
        f"worker {role}: all {METRICS_SLOTS} metrics ports of the role are in use "
        f"({taken[0]} … {taken[-1]}); set CHRONIC_METRICS_PORT_BASE to a free range"
    )


def companions(role: str, resources: Resources) -> AbstractAsyncContextManager[None]:
    """What runs next to the role's worker (``alongside`` in its module; the reconciler of
    the review role), or nothing."""
    alongside = getattr(role_module(role), "alongside", None)
    return alongside(resources) if alongside is not None else contextlib.nullcontext()


def stop_on_signals() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets: a worker process's stop (in a running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_worker(role: str, settings: Settings | None = None) -> None:
    """Poll the role's task queue until a stop signal arrives."""
    settings = settings or get_settings()
    module = role_module(role)
    client = await connect(settings, runtime=_runtime(role, settings))
    resources = Resources(settings, client=client)
    stop = stop_on_signals()
    worker = module.build(
        client,
        resources,
        graceful_shutdown=timedelta(seconds=settings.worker_shutdown_grace_seconds),
    )
    try:
        async with worker, companions(role, resources):
            log.info(
                "worker %s polling task queue %r (pid %d)", role, module.TASK_QUEUE, os.getpid()
            )
            await stop.wait()
            log.info("worker %s stopping: finishing in-flight tasks", role)
    finally:
        await resources.close()
    log.info("worker %s stopped", role)

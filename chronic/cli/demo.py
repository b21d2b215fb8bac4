"""`chronic demo`: a batch of one region's applications with simulated people, on the stack.

The stack is what `chronic dev up` starts (or any Temporal + PostgreSQL the settings point
at, with the five workers polling). When a part is missing the command says which, in one
line, and exits 1 without submitting anything.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import typer
from rich.console import Console
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from chronic import migrate
from chronic.db import Database
from chronic.demo import DemoOptions, DemoPlanError, DemoReport, run_demo
from chronic.settings import Settings, get_settings
from chronic.temporal_client import connect, connect_options
from models.policy import available_regions
from workers import queues

_START_HINT = "start it with `chronic dev up`"

_ROLE_QUEUES = {
    "orchestration": (queues.APPLICATIONS, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
    "intake": (queues.INTAKE, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    "assignment": (queues.ASSIGNMENT, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    "review": (queues.REVIEW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    "notification": (queues.NOTIFICATION, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
}


class StackMissing(Exception):
    """A part of the stack is not there; ``str()`` is one line saying what to do."""


def default_ui_url(settings: Settings) -> str:
    """The dev server's web UI next to the configured Temporal address."""
    target = str(connect_options(settings).get("target_host", settings.temporal_default_address))
    host = target.rpartition(":")[0] or "localhost"
    if host in ("127.0.0.1", "0.0.0.0", "[::1]"):
        host = "localhost"
    return f"http://{host}:{settings.temporal_ui_port}"


async def _reach_temporal(settings: Settings) -> Client:
    target = connect_options(settings).get("target_host", "?")
    try:
        return await connect(settings)
    except RuntimeError as error:
        raise StackMissing(f"cannot reach Temporal at {target}: {_START_HINT}") from error


async def _check_workers(client: Client) -> None:
    missing = []
    for role, (queue, kind) in _ROLE_QUEUES.items():
        try:
            response = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=kind,
                )
            )
        except RPCError as error:
            raise StackMissing(f"Temporal did not describe task queue {queue}: {error}") from None
        if not response.pollers:
            missing.append(role)
    if missing:
        raise StackMissing(
            f"no worker polls for {', '.join(missing)}: {_START_HINT} (it starts all five), "
            "or `chronic worker <role>` for each"
        )


async def connect_to_stack(settings: Settings) -> Client:
    """A client of the running stack, once the database, Temporal and the five workers answer.

    Raises:
        StackMissing: a part is missing; the message says which and what to do.
    """
    try:
        await migrate.check_reachable()  # the configured database, with its own hint
    except migrate.DatabaseUnreachable as error:
        raise StackMissing(str(error)) from None
    client = await _reach_temporal(settings)
    await _check_workers(client)
    return client


async def _main(
    settings: Settings, ui_url: str, region: str, count: int | None, options: DemoOptions
) -> DemoReport:
    client = await connect_to_stack(settings)
    db = Database.from_settings(settings)
    try:
        return await run_demo(
            settings,
            ui_url=ui_url,
            region=region,
            count=count,
            options=options,
            client=client,
            db=db,
        )
    finally:
        await db.dispose()


def _known_region(region: str) -> str:
    if region not in available_regions():
        raise typer.BadParameter(
            f"no policy for {region!r}: one of {', '.join(available_regions())}"
        )
    return region


def demo(
    region: str = typer.Option(
        "sanmenxia",
        "--region",
        "-r",
        callback=_known_region,
        help="Whose process runs: sanmenxia (experts review), wuhan (office and hospital "
        "steps, tracks A and B) or jilin (assessment hospitals, remote applicants).",
    ),
    count: int | None = typer.Option(
        None,
        "--count",
        "-n",
        min=1,
        max=500,
        help="Applications to submit (default: 24 in Sanmenxia, one per branch elsewhere).",
    ),
    accept_window_seconds: float = typer.Option(
        20, min=1, help="Accept window of the demo's policy (24 h in the real one)."
    ),
    decision_window_seconds: float = typer.Option(
        40, min=1, help="Time an accepted expert has to decide (72 h in the real one)."
    ),
    resubmission_window_seconds: float = typer.Option(
        60, min=1, help="Time to resubmit after a return or a materials request (15 days)."
    ),
    no_expert_retry_seconds: float = typer.Option(
        10, min=1, help="Wait before drawing again when no expert is eligible (1 h)."
    ),
    timeout: float = typer.Option(
        600, min=1, help="Seconds to wait for every application to finish."
    ),
    seed: int | None = typer.Option(
        None, help="Seed of the demo's choices (people, diseases, pauses), to repeat a batch."
    ),
    ui_url: str | None = typer.Option(
        None, help="Base URL of the Temporal UI for the links (default: the dev server's)."
    ),
) -> None:
    """Submit a batch of varied applications of a region and play its people until all are
    decided.

    Every branch of the region's process appears. Sanmenxia: approvals, a decline and a lapse
    that are reassigned, rejections, a disagreement settled by a third expert, a materials
    request, an intake return and a refusal. Wuhan: track A (the hospital desk applies, the
    office designates it, it assesses, the office confirms) and track B (an assessment hospital
    named by the office decides from the records or after an on-site examination), an office
    return, an office refusal, an intake return and a refusal. Jilin: assessment at a
    designated assessment hospital with instant effect, an on-site examination, a remote
    applicant who files a long-term out-of-area filing first and one without (refused). Needs
    the running stack (`chronic dev up`).
    """
    settings = get_settings()
    options = DemoOptions(
        accept_window=timedelta(seconds=accept_window_seconds),
        decision_window=timedelta(seconds=decision_window_seconds),
        resubmission_window=timedelta(seconds=resubmission_window_seconds),
        no_expert_retry_interval=timedelta(seconds=no_expert_retry_seconds),
        timeout=timeout,
        seed=seed,
    )
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        report = asyncio.run(
            _main(settings, ui_url or default_ui_url(settings), region, count, options)
        )
    except (StackMissing, DemoPlanError) as error:
        errors.print(f"chronic demo: {error}", markup=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        errors.print("chronic demo: interrupted; the submitted applications keep running")
        raise typer.Exit(130) from None
    if report.timed_out or not report.all_as_planned:
        raise typer.Exit(1)

"""The baseline's worker: ``python -m chronic.bench.baseline_worker TASK_QUEUE [METRICS]``.

`chronic bench` starts it as a subprocess, like a worker role of the stack, so the bench's
own process (driver, client, simulated experts) does not share a Python interpreter with the
workflow code and activities it measures. It runs :class:`~chronic.bench.baseline.
BaselineWorkflow` and its no-op activities on a task queue of its own, with the product's
data converter and the orchestration role's sandbox settings, and with eager activity
dispatch off: the application's activities always go through a task queue to another role's
worker, so the baseline's do too. It writes one line to standard output per offer
(``offer {"workflow_id": …}``) and ``ready`` once it polls; the bench reads those lines into
the baseline experts' in-memory feed. It stops on SIGINT / SIGTERM, or when its parent
process is gone (its standard input, a pipe from the bench, ends).
"""

from __future__ import annotations

import asyncio
import os
import sys

from temporalio import activity
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from chronic.bench.baseline import NOOP, OFFER, BaselineWorkflow, OfferNote, StepNote
from chronic.settings import get_settings
from chronic.temporal_client import connect
from workers.runner import stop_on_signals
from workers.sandbox import workflow_runner

OFFER_LINE = "offer "
READY_LINE = "ready"


@activity.defn(name=NOOP)
async def noop(note: StepNote) -> None:
    """Nothing: the place of one of the application's activities."""


@activity.defn(name=OFFER)
async def offer(note: OfferNote) -> None:
    """Tell the bench's experts about an offer (the application's draw writes an offer row)."""
    sys.stdout.write(OFFER_LINE + note.model_dump_json() + "\n")
    sys.stdout.flush()


SHUTDOWN_SECONDS = 30.0


def leave_within(seconds: float) -> None:
    """Exit the process ``seconds`` from now if the worker's shutdown has not ended it.

    The SDK's shutdown waits on the server; a bench that died with its stack (or was killed)
    must not leave a worker process behind, polling for ever (one did, for half an hour)."""
    asyncio.get_running_loop().call_later(seconds, os._exit, 0)


async def stdin_reader() -> asyncio.StreamReader:
    """Standard input as a stream: a pipe from the bench, which ends when the bench is gone."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def _parent_gone() -> None:
    """Returns when standard input ends: the bench closed its end, or is gone."""
    reader = await stdin_reader()
    while await reader.read(4096):
        pass


async def main(task_queue: str, metrics: str | None = None) -> None:
    """Run the baseline's worker; ``metrics`` (host:port) serves its SDK metrics, as the
    roles' workers do."""
    runtime = None
    if metrics:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=metrics)))
    client = await connect(runtime=runtime)
    stop = stop_on_signals()
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[BaselineWorkflow],
        activities=[noop, offer],
        # Like the application's activities, which run on other roles' queues, every one goes
        # through the server's task queue: no eager dispatch in the workflow task's response.
        disable_eager_activity_execution=True,
        # The orchestration role's runner, whatever CHRONIC_WORKFLOW_SANDBOX says.
        workflow_runner=workflow_runner(get_settings().workflow_sandbox),
    )
    async with worker:
        sys.stdout.write(READY_LINE + "\n")
        sys.stdout.flush()
        orphaned = asyncio.create_task(_parent_gone())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({orphaned, stopping}, return_when=asyncio.FIRST_COMPLETED)
        orphaned.cancel()
        stopping.cancel()
        leave_within(SHUTDOWN_SECONDS)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))

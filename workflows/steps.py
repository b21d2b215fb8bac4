"""What every workflow of the product runs its database steps with (workflow-safe).

A step is an activity on another role's queue: a short timeout, retried with backoff for as
long as the database (or the SMS provider) is away; only errors marked non-retryable (a
missing record, an invalid number) stop the retries and reach the workflow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

DB_ACTIVITY = timedelta(seconds=30)
RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))


Arg = TypeVar("Arg")
Result = TypeVar("Result")


async def run_step(
    activity: Callable[[Any, Arg], Awaitable[Result]],
    arg: Arg,
    *,
    queue: str,
    summary: str,
) -> Result:
    """Run a database activity of a role's contract (:mod:`models.roles`), e.g.
    ``run_step(ReviewRole.change_status, change, queue=ReviewRole.QUEUE, …)``: short timeout,
    retried with backoff until the database is back; argument and result type-checked."""
    return await workflow.execute_activity_method(
        activity,
        arg,
        task_queue=queue,
        start_to_close_timeout=DB_ACTIVITY,
        retry_policy=RETRY,
        summary=summary,
    )


class ProcessStop:
    """How a workflow's run stops its process task (an office close, an operator cancel).

    Cancelling the task is not enough: a step whose activity finished in the same workflow task
    gets its result, not the cancellation (the SDK does not undo a finished activity), and the
    process would go on to its next wait and stay there. So each wait of the process also ends
    on :attr:`requested`, and :meth:`check` after it raises the cancellation.
    """

    def __init__(self) -> None:
        self.requested = False

    async def stop(self, process: asyncio.Task[None]) -> bool:
        """Stop ``process`` and wait for it; False when it ended on its own in the task the
        stop came with (a decision made then stands)."""
        self.requested = True
        process.cancel()
        await workflow.wait([process])
        return process.cancelled() or process.exception() is not None

    def check(self) -> None:
        """After a wait that ends on :attr:`requested`: the process stops here."""
        if self.requested:
            raise asyncio.CancelledError("the run is stopping the process")


def cause(error: BaseException) -> str:
    """The innermost message of a Temporal failure chain (no stack trace)."""
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[attr-defined]
    return str(error)

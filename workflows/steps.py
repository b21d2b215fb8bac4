"""What every workflow of the product runs its database steps with (workflow-safe).

A step is an activity on another role's queue: a short timeout, retried with backoff for as
long as the database (or the SMS provider) is away; only errors marked non-retryable (a
missing record, an invalid number) stop the retries and reach the workflow.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

DB_ACTIVITY = timedelta(seconds=30)
RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))


async def run_step(
    activity: str,
    arg: object,
    *,
    queue: str,
    summary: str,
    result_type: type[Any] | None = None,
) -> Any:
    """Run a database activity: short timeout, retried with backoff until the database is back."""
    return await workflow.execute_activity(
        activity,
        arg,
        task_queue=queue,
        result_type=result_type,
        start_to_close_timeout=DB_ACTIVITY,
        retry_policy=RETRY,
        summary=summary,
    )


def cause(error: BaseException) -> str:
    """The innermost message of a Temporal failure chain (no stack trace)."""
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[attr-defined]
    return str(error)

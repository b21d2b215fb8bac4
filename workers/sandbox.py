"""The runner of the workflow code, by ``CHRONIC_WORKFLOW_SANDBOX``.

Apart from :mod:`workers.orchestration` so that the bench's baseline worker takes the same
runner without importing the role's database and workflow modules.
"""

from __future__ import annotations

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions


def workflow_runner(mode: str) -> WorkflowRunner:
    """The sandbox of the workflow code (``CHRONIC_WORKFLOW_SANDBOX``).

    python-stdnum (the free-text rule reads its region tables on first use) is deterministic
    and side-effect free: shared rather than re-imported per run. ``shared`` also imports our
    own workflow code once: re-executing it in every run's sandbox costs about 280 KiB per
    cached workflow (401 against 117 KiB measured with 300 applications parked at their first
    activity), the difference between 2,500 and 8,500 cached workflows in 1 GB. ``strict``
    keeps the full per-run sandbox, which intercepts a non-deterministic call (clock, random,
    I/O) in workflow code: the tests run strict, and the recorded histories replay
    (tests/histories).
    ``off`` runs the workflow code with no sandbox: no interception at run time (only the
    strict test runs catch such a call), for a quarter to a third less CPU in this role
    (README, Benchmark): the sandbox enters itself for every activation and every payload of
    a task's commands.
    """
    if mode == "off":
        return UnsandboxedWorkflowRunner()
    shared = ("stdnum",) if mode == "strict" else ("stdnum", "workflows")
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*shared)
    )

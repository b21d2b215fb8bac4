"""The expert pool's office actions, one code path for the CLI and the hall.

``chronic expert reinstate`` and the office page's 恢复 button both call :func:`reinstate`
(in the caller's transaction, with the caller's actor: ``operator:<name>`` at the desk,
``hall:<username>`` in the hall) and then :func:`signal_waiting`, so a reinstatement reads
and is audited the same wherever it is done.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from chronic.actor import record_as
from models.domain import ExpertStatus
from models.tables import Expert
from workflows.application import ApplicationWorkflow

POOL_EXHAUSTED_QUERY = 'PoolExhausted = true AND ExecutionStatus = "Running"'
"""Running applications that wait for an eligible expert."""

REINSTATED_ACTION = "expert_reinstated"


class PoolRefused(ValueError):
    """The pool's register refuses the change; the message says why in plain words."""


@dataclass(frozen=True)
class Reinstated:
    code: str
    was: str
    strikes: int


async def reinstate(session: AsyncSession, code: str, reason: str, actor: str) -> Reinstated:
    """Bring a disqualified or inactive expert back (active, strikes reset) and record it as
    ``actor`` with ``reason``, in the caller's transaction.

    Raises:
        PoolRefused: no such expert, or the expert is active already.
    """
    row = await session.get(Expert, code, with_for_update=True)
    if row is None:
        raise PoolRefused(f"no expert {code} in the pool register")
    if row.status == ExpertStatus.ACTIVE:
        raise PoolRefused(
            f"{code} is active already ({row.consecutive_strikes} strikes): nothing to reinstate"
        )
    before, strikes = str(row.status), row.consecutive_strikes
    row.status = ExpertStatus.ACTIVE
    row.consecutive_strikes = 0
    row.disqualified_at = None
    session.add(row)
    await record_as(session, actor, REINSTATED_ACTION, None, reason=reason, expert=code, was=before)
    return Reinstated(code, before, strikes)


async def signal_waiting(client: Client) -> str:
    """Signal ``pool_changed`` to every running application waiting on an exhausted pool;
    returns one line saying how many draw again."""
    try:
        ids = [e.id async for e in client.list_workflows(POOL_EXHAUSTED_QUERY)]
    except RPCError as error:
        return f"could not list applications waiting for an expert: {error.message}"
    signalled = 0
    for workflow_id in ids:
        try:
            await client.get_workflow_handle_for(ApplicationWorkflow.run, workflow_id).signal(
                ApplicationWorkflow.pool_changed
            )
            signalled += 1
        except RPCError:
            pass  # finished in the meantime
    if not signalled:
        return "no application is waiting for an expert"
    return f"{signalled} application(s) waiting for an expert draw again now"

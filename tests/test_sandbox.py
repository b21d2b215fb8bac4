"""The production sandbox mode (``shared``: workflow code imported once per worker process).

The rest of the suite runs ``strict`` (tests/conftest.py), where the sandbox re-imports the
workflow code per run and intercepts non-deterministic calls; this runs a whole application,
both review stages and a continue-free path to the SMS, on workers built the production way.
"""

from __future__ import annotations

from models.domain import ApplicationStatus
from tests import support
from tests.fixtures.world import World
from tests.test_application_workflow import accept_and_decide


async def test_a_whole_application_runs_on_shared_workflow_code(world: World) -> None:
    await world.stop_workers()
    world.settings = world.settings.model_copy(update={"workflow_sandbox": "shared"})
    await world.start_workers()
    handle = await world.start()
    first = await support.pending_offer(handle)
    await accept_and_decide(handle, first.expert)
    second = await support.pending_offer(handle, seq=2)
    await accept_and_decide(handle, second.expert)
    result = await handle.result()
    assert result.status == ApplicationStatus.APPROVED
    sms = await support.outbox(world.db, handle)
    assert [s.template for s in sms] == ["submitted", "approved"]

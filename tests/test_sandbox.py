"""The production sandbox mode (``shared``: workflow code imported once per worker process).

The rest of the suite runs ``strict`` (tests/conftest.py), where the sandbox re-imports the
workflow code per run and intercepts non-deterministic calls; this runs a whole application,
both review stages and a continue-free path to the SMS, on workers built the production way.
And what keeps the cached runs of that worker small: one shared policy profile, and a cache
whose size is a setting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.contrib.pydantic import pydantic_data_converter

from models.domain import ApplicationStatus
from models.messages import ApplicationInput
from models.policy import load_policy
from tests import support
from tests.fixtures.world import World
from tests.test_application_workflow import accept_and_decide
from workers import orchestration
from workers.resources import Resources


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


def test_cached_applications_of_one_disease_hold_one_profile() -> None:
    """The SDK keeps each run's start argument while the run is cached: two applications'
    inputs, decoded as the worker decodes them, share one profile rather than each its copy
    (some 90 objects, about 12 KiB a cached workflow, measured with tracemalloc)."""
    converter = pydantic_data_converter.payload_converter
    rules = load_policy("sanmenxia")
    disease = rules.catalogue[0].code
    decoded = [
        converter.from_payloads(
            converter.to_payloads(
                [
                    ApplicationInput(
                        application_id=f"APP-20261201-TEST0{n}",
                        policy=rules.for_case(disease),
                        disease_code=disease,
                        applicant_key=f"key-{n}",
                        submitted_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
                    )
                ]
            ),
            [ApplicationInput],
        )[0]
        for n in (1, 2)
    ]
    assert decoded[0].application_id != decoded[1].application_id
    assert decoded[0].policy == rules.for_case(disease)
    assert decoded[0].policy is decoded[1].policy


async def test_the_cache_size_setting_bounds_the_orchestration_workers_cache(world: World) -> None:
    """`CHRONIC_WORKFLOW_CACHE_SIZE` is what an operator lowers when the orchestration worker
    needs less memory: it must reach the worker the role builds."""
    await world.stop_workers()  # the role's queue takes one worker per client
    settings = world.settings.model_copy(update={"workflow_cache_size": 7})
    client = world.env.client
    worker = orchestration.build(
        client, Resources(settings, client=client), graceful_shutdown=timedelta(seconds=1)
    )
    async with worker:
        assert worker.config()["max_cached_workflows"] == 7

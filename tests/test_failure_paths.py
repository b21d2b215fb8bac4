"""The failure paths of issue 8 on the time-skipping server: nothing stuck, nothing lost.

Each test reproduces a way an application used to freeze, stay open or end unheard, and
checks the outcome a person would notice: the row closed with a reason, the SMS sent, the
expert not punished for our outage, the office alerted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.testing import ActivityEnvironment

from activities.assignment import AssignmentActivities
from models.domain import ApplicationStatus, ExpertStatus, MaterialKind, OfferStatus
from models.messages import (
    AcceptOffer,
    AssignExpert,
    CloseApplication,
    Decide,
    DeclineOffer,
    OfferAnswer,
    OfferView,
    RequestMaterials,
    Resubmission,
    StatusChange,
)
from models.tables import Application, Expert, Offer, OfficeNotice
from tests import support
from tests.fixtures.world import World
from tests.test_application_workflow import accept_and_decide
from workflows.application import ApplicationWorkflow

DAY = timedelta(days=1)
OPINION = "HbA1c 8.2%，2026-11-02 复查；住院号 20261102001；空腹血糖 11.3 mmol/L <b>✓</b> 😀"


async def _row(world: World, application_id: str) -> Application:
    async with world.db.session() as session:
        row = await session.get(Application, application_id)
        assert row is not None
        return row


async def test_medical_text_with_dates_and_long_numbers_is_carried_to_the_end(
    world: World,
) -> None:
    handle = await world.start(application=support.form(support.LI, "DIAL"))
    offer = await support.pending_offer(handle)
    await accept_and_decide(handle, offer.expert, approve=False, opinion=OPINION)

    result = await handle.result()
    assert result.status == ApplicationStatus.REJECTED
    assert result.decisions[0].opinion == OPINION
    row = await _row(world, handle.id)
    assert row.closed_at is not None and row.outcome_reason == OPINION
    rejected = [s for s in await support.outbox(world.db, handle) if s.template == "rejected"]
    assert len(rejected) == 1 and rejected[0].status == "sent"
    assert "20261102001" in rejected[0].params["reason"] or "…" in rejected[0].params["reason"]


@pytest.mark.parametrize(
    ("opinion", "expected"),
    [
        (f"患者身份证 {support.WANG}", "resident ID number"),
        ("请联系 138 0398 1234", "mobile number"),
        ("ok\x00", "control character U+0000"),
        ("长" * 2001, "at most 2000"),
    ],
)
async def test_personal_data_and_broken_text_are_refused_at_the_door(
    world: World, opinion: str, expected: str
) -> None:
    handle = await world.start()
    offer = await support.pending_offer(handle)
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=offer.expert))
    decide = Decide.model_construct(expert=offer.expert, approve=False, opinion=opinion)
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(ApplicationWorkflow.decide, decide)
    assert expected in str(failure.value.cause)
    # Refused before acceptance: no trace in the history, and the expert can still decide.
    history = await handle.fetch_history()
    accepted = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert len(accepted) == 1
    assert support.WANG not in str(history.to_json())
    decision = await handle.execute_update(
        ApplicationWorkflow.decide, Decide(expert=offer.expert, approve=True, opinion="符合")
    )
    assert decision.expert == offer.expert


async def test_office_close_ends_it_with_the_reason_an_sms_and_frees_the_person(
    world: World,
) -> None:
    handle = await world.start()
    offer = await support.pending_offer(handle)
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=offer.expert))
    progress = await handle.execute_update(
        ApplicationWorkflow.close,
        CloseApplication(actor="operator:zhao", reason="申请人撤回申请"),
    )
    assert progress.status == ApplicationStatus.CLOSED and progress.finished_at is not None
    row = await _row(world, handle.id)
    assert row.status == ApplicationStatus.CLOSED and row.closed_at is not None
    assert row.outcome_reason == "closed by the office: 申请人撤回申请"
    async with world.db.session() as session:
        held = await session.get(Offer, offer.offer_id)
    assert held is not None and held.status == OfferStatus.WITHDRAWN  # off the expert's list
    closed = [s for s in await support.outbox(world.db, handle) if s.template == "closed"]
    assert len(closed) == 1 and closed[0].status == "sent"
    actors = await support.audit_actors(world.db, handle.id, "status_closed")
    assert actors == ["operator:zhao"]
    again = await world.start()  # the one-open-application guard is released
    assert again.id != handle.id


async def _history_has(handle: support.Handle, kind: EventType.ValueType, activity: str) -> None:
    """Until the history has an event of ``kind`` for the activity type ``activity``."""
    for _ in range(200):
        history = await handle.fetch_history()
        scheduled = {
            e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        }
        for e in history.events:
            if e.event_type != kind:
                continue
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                of = e.event_id
            else:
                of = e.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled.get(of) == activity:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {EventType.Name(kind)} of {activity} in 20 s")


@pytest.mark.parametrize("stop", ["office close", "operator cancel"])
async def test_a_close_arriving_with_a_steps_result_still_closes_it(
    world: World, stop: str
) -> None:
    """The close (or cancel) and the draw's result reach the workflow in one task (its worker
    was down while both came in): the process must stop at its next wait, and the application
    close.

    The SDK hands a finished activity's result to a step even when the step's task was just
    cancelled: cancelling the process alone left it waiting for an expert, and the office's
    close waiting for ever."""
    await world.stop_workers()
    # No sticky cache: each workflow task goes to the role's queue, where a restarted worker
    # finds it (the test server never moves a task off a stopped worker's sticky queue).
    world.settings = world.settings.model_copy(update={"workflow_cache_size": 0})
    await world.start_workers("orchestration", "intake", "review", "notification")
    handle = await world.start()
    await _history_has(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "draw_expert")
    await world.stop_workers()  # no workflow worker from here on: what comes in waits
    await world.start_workers("assignment")
    await _history_has(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, "draw_expert")
    if stop == "office close":
        closing: asyncio.Task[object] = asyncio.create_task(
            handle.execute_update(
                ApplicationWorkflow.close,
                CloseApplication(actor="operator:zhao", reason="申请人撤回"),
            )
        )
        await asyncio.sleep(1)  # the server holds the update for the pending workflow task
        reason = "closed by the office: 申请人撤回"
    else:
        await handle.cancel()
        closing = asyncio.create_task(support.wait_closed(world.db, handle.id, 60))
        reason = "cancelled by an operator"
    await world.stop_workers()
    await world.start_workers()
    await asyncio.wait_for(closing, 60)  # was never answered
    with contextlib.suppress(WorkflowFailureError):  # cancelled
        await asyncio.wait_for(handle.result(), 60)
    description = await handle.describe()
    assert description.status is not None and description.status.name in ("COMPLETED", "CANCELED")
    row = await _row(world, handle.id)
    assert row.status == ApplicationStatus.CLOSED and row.outcome_reason == reason
    async with world.db.session() as session:
        offers = (
            await session.exec(select(Offer).where(col(Offer.application_id) == handle.id))
        ).all()
    assert [o.status for o in offers] == [OfferStatus.WITHDRAWN]  # off the expert's list
    assert await support.audit_actors(world.db, handle.id, "offer_withdrawn") == ["system"]
    templates = [s.template for s in await support.outbox(world.db, handle)]
    assert templates[0] == "submitted" and templates[-1] == "closed"


async def test_cancelled_workflow_closes_the_row_and_tells_the_applicant(world: World) -> None:
    handle = await world.start()
    await support.pending_offer(handle)
    await handle.cancel()
    await support.wait_closed(world.db, handle.id)
    row = await _row(world, handle.id)
    assert row.status == ApplicationStatus.CLOSED and "cancelled" in (row.outcome_reason or "")
    templates = [s.template for s in await support.outbox(world.db, handle)]
    assert templates == ["submitted", "closed"]


async def _materials_requested(world: World) -> tuple[support.Handle, OfferView]:
    """An application whose reviewer accepted and asked for materials; the window is open."""
    handle = await world.start()
    offer = await support.pending_offer(handle)
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=offer.expert))
    await handle.execute_update(
        ApplicationWorkflow.request_materials, RequestMaterials(expert=offer.expert, note="补充")
    )
    await support.eventually(handle, support.waits_for_resubmission)
    return handle, offer


async def test_materials_never_resubmitted_close_with_an_sms(world: World) -> None:
    handle, _ = await _materials_requested(world)
    await world.env.sleep(timedelta(days=15, hours=1))
    result = await handle.result()
    assert result.status == ApplicationStatus.CLOSED
    templates = [s.template for s in await support.outbox(world.db, handle)]
    assert templates == ["submitted", "materials_requested", "closed"]


async def test_resubmitted_materials_are_held_to_intake_rules_by_the_validator(
    world: World,
) -> None:
    handle, offer = await _materials_requested(world)
    old = date.today() - timedelta(days=400)
    for bad, expected in [
        (support.material(MaterialKind.LAB_RESULT, hospital="H99"), "no hospital with code H99"),
        (support.material(MaterialKind.LAB_RESULT, issued_on=old), "more than 365 days ago"),
    ]:
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await handle.execute_update(
                ApplicationWorkflow.resubmit, Resubmission(materials=support.items(bad))
            )
        assert expected in str(failure.value.cause)
    good = support.items(support.material(MaterialKind.LAB_RESULT))
    assert await handle.execute_update(ApplicationWorkflow.resubmit, Resubmission(materials=good))
    progress = await support.eventually(handle, lambda p: p.status == "in_review")
    assert progress.current_offer is not None and progress.current_offer.expert == offer.expert


@pytest.mark.parametrize(
    ("recorded_late", "status", "strikes"),
    [(timedelta(hours=6), OfferStatus.WITHDRAWN, 0), (timedelta(minutes=1), OfferStatus.LAPSED, 1)],
)
async def test_our_outage_past_the_accept_window_is_no_strike(
    world: World, recorded_late: timedelta, status: OfferStatus, strikes: int
) -> None:
    """The lapse is recorded when our system is back: hours late means it was down."""
    handle = await world.start()
    offer = await support.pending_offer(handle)
    # The lapse activity as it runs when the database roles come back, hours after the
    # deadline (its attempt's start on the server clock), or on time.
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info, started_time=offer.accept_deadline + recorded_late
    )
    outcome = await environment.run(
        AssignmentActivities(world.db, draw_key=b"test").answer_offer,
        OfferAnswer(
            offer_id=offer.offer_id,
            status=OfferStatus.LAPSED,
            at=offer.accept_deadline,
            reason="no answer within 24 h",
            deadline=offer.accept_deadline,
            outage_grace=timedelta(minutes=15),
        ),
    )
    assert outcome.status == status and outcome.consecutive_strikes == strikes
    assert (await support.expert(world.db, offer.expert)).consecutive_strikes == strikes
    if status == OfferStatus.WITHDRAWN:
        assert "unavailable" in (outcome.reason or "")


async def test_a_lapse_on_time_is_still_a_strike(world: World) -> None:
    handle = await world.start()
    offer = await support.pending_offer(handle)
    await world.env.sleep(timedelta(hours=24, minutes=1))
    await support.pending_offer(handle, seq=2)
    progress = await handle.query(ApplicationWorkflow.progress)
    assert progress.offers[0].status == OfferStatus.LAPSED
    assert (await support.expert(world.db, offer.expert)).consecutive_strikes == 1


async def test_decision_after_the_deadline_is_refused_and_each_handler_gets_its_own(
    world: World,
) -> None:
    handle = await world.start(decision_window=timedelta(seconds=6))
    first = await support.pending_offer(handle)
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=first.expert))
    await asyncio.sleep(7)  # real seconds: the deadline has passed
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(
            ApplicationWorkflow.decide, Decide(expert=first.expert, approve=True, opinion="迟")
        )
    cause = str(failure.value.cause)
    assert "deadline" in cause or "closed" in cause
    second = await support.pending_offer(handle, seq=2)
    progress = await handle.query(ApplicationWorkflow.progress)
    assert progress.offers[0].status == OfferStatus.DECISION_LAPSED
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=second.expert))
    mine = await handle.execute_update(
        ApplicationWorkflow.decide, Decide(expert=second.expert, approve=True, opinion="符合")
    )
    assert mine.expert == second.expert and mine.opinion == "符合"


async def test_disqualification_withdraws_the_experts_other_offers_at_once(world: World) -> None:
    pool = await support.experts_of(world.db, "endocrine")
    target, others = pool[0], pool[1:]
    await support.keep_only_active(world.db, "endocrine", [target])
    held = await world.start(application=support.form(support.LI, "DM"))
    assert (await support.pending_offer(held)).expert == target
    await held.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=target))
    striking = await world.start()
    assert (await support.pending_offer(striking)).expert == target
    await support.set_active(world.db, others)
    async with world.db.session() as session:
        await session.exec(
            sa.update(Expert).where(col(Expert.code) == target).values(consecutive_strikes=2)
        )
    await striking.execute_update(ApplicationWorkflow.decline, DeclineOffer(expert=target))

    second = await support.pending_offer(held, seq=2)
    assert second.expert != target
    progress = await held.query(ApplicationWorkflow.progress)
    assert progress.offers[0].status == OfferStatus.WITHDRAWN
    assert "disqualified" in (progress.offers[0].reason or "")
    assert (await support.expert(world.db, target)).status == ExpertStatus.DISQUALIFIED
    await support.deliveries_done(striking)
    notices = [s for s in await support.outbox(world.db) if s.template == "expert_disqualified"]
    assert len(notices) == 1


async def test_exhausted_pool_alerts_the_office_and_wakes_when_an_expert_returns(
    world: World,
) -> None:
    pool = await support.experts_of(world.db, "endocrine")
    await support.keep_only_active(world.db, "endocrine", pool[:1])
    handle = await world.start()
    offer = await support.pending_offer(handle)
    await handle.execute_update(
        ApplicationWorkflow.decline, DeclineOffer(expert=offer.expert, reason="出差")
    )
    progress = await support.eventually(handle, lambda p: p.pool_exhausted_since is not None)
    assert any("pool exhausted" in a for a in progress.alerts)
    async with world.db.session() as session:
        notices = list(
            await session.scalars(
                sa.select(OfficeNotice).where(col(OfficeNotice.application_id) == handle.id)
            )
        )
    assert [n.kind for n in notices] == ["pool_exhausted"] and notices[0].resolved_at is None

    # The office assigns by hand an expert of another hospital who has not seen it.
    await support.set_active(world.db, pool[1:2])
    assigned = await handle.execute_update(
        ApplicationWorkflow.assign_expert, AssignExpert(actor="operator:zhao", expert=pool[1])
    )
    assert assigned.expert == pool[1] and assigned.status == OfferStatus.PENDING
    progress = await handle.query(ApplicationWorkflow.progress)
    assert progress.pool_exhausted_since is None and progress.alerts == ()

    # A second exhaustion is woken at once by pool_changed, without waiting for the timer.
    await handle.execute_update(ApplicationWorkflow.decline, DeclineOffer(expert=pool[1]))
    await support.eventually(handle, lambda p: p.pool_exhausted_since is not None)
    await support.set_active(world.db, pool[2:3])
    await handle.signal(ApplicationWorkflow.pool_changed)
    third = await support.pending_offer(handle, seq=3)
    assert third.expert == pool[2]


async def test_lapsed_experts_return_once_everyone_was_tried(world: World) -> None:
    pool = await support.experts_of(world.db, "endocrine")
    await support.keep_only_active(world.db, "endocrine", pool[:1])
    handle = await world.start()
    first = await support.pending_offer(handle)
    await world.env.sleep(timedelta(hours=24, minutes=1))
    again = await support.pending_offer(handle, seq=2)
    assert again.expert == first.expert  # only lapsed: offered again, not left waiting


async def test_a_long_wait_keeps_the_history_bounded(world: World) -> None:
    pool = await support.experts_of(world.db, "endocrine", hospital_not="H01")
    await support.keep_only_active(world.db, "endocrine", [])
    handle = await world.start(history_event_limit=60)
    await support.eventually(handle, lambda p: p.pool_exhausted_since is not None)
    first_run = (await handle.describe()).run_id
    await world.env.sleep(timedelta(days=40))
    description = await handle.describe()
    assert description.run_id != first_run  # continued as new
    history = await handle.fetch_history()
    assert len(history.events) < 120
    progress = await handle.query(ApplicationWorkflow.progress)
    assert progress.pool_exhausted_since is not None and progress.status == "in_review"
    await support.set_active(world.db, pool[:2])
    await handle.signal(ApplicationWorkflow.pool_changed)
    offer = await support.pending_offer(handle)
    await accept_and_decide(handle, offer.expert)
    second = await support.pending_offer(handle, seq=2)  # re-review goes on in the new run
    assert second.expert != offer.expert


async def test_a_late_status_write_never_overwrites_a_newer_one(world: World) -> None:
    handle = await world.start()
    await support.pending_offer(handle)
    row = await _row(world, handle.id)
    from temporalio.testing import ActivityEnvironment

    from activities.review import ReviewActivities

    late = StatusChange(
        application_id=handle.id,
        status=ApplicationStatus.INTAKE,
        stage="intake",
        at=row.submitted_at,
        step="intake-late-retry",
        seq=1,
    )
    await ActivityEnvironment().run(ReviewActivities(world.db).change_status, late)
    after = await _row(world, handle.id)
    assert after.status == ApplicationStatus.IN_REVIEW and after.status_seq == row.status_seq

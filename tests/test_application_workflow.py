"""The Sanmenxia process (seed 002) on the time-skipping server, with the real activities.

Each test runs the product's own workers against a fresh copy of the seeded database; windows
of 24 h, 72 h and 15 days are crossed with ``env.sleep``, not shortened.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.worker import Replayer

from chronic.submission import SubmissionRefused, submit
from models.domain import (
    ApplicationStatus,
    ExpertStatus,
    MaterialKind,
    OfferStatus,
    ReviewDecision,
    ReviewStage,
)
from models.messages import AcceptOffer, Decide, DeclineOffer, RequestMaterials, Resubmission
from models.tables import Application, Benefit, Expert, Material
from tests import support
from tests.fixtures.world import World
from workflows import WORKFLOWS
from workflows.application import ApplicationWorkflow

DAY = timedelta(days=1)


async def accept_and_decide(
    handle: support.Handle, expert: str, *, approve: bool = True, opinion: str = "符合认定标准"
) -> None:
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=expert))
    await handle.execute_update(
        ApplicationWorkflow.decide, Decide(expert=expert, approve=approve, opinion=opinion)
    )


async def test_two_stage_review_by_different_experts_approves_and_sends_one_sms(
    world: World,
) -> None:
    handle = await world.start()
    first = await support.pending_offer(handle)
    assert first.stage == ReviewStage.INITIAL_REVIEW and first.pool_size >= 2
    await accept_and_decide(handle, first.expert)
    second = await support.pending_offer(handle, seq=2)
    assert second.stage == ReviewStage.RE_REVIEW
    assert second.expert != first.expert
    await accept_and_decide(handle, second.expert)

    result = await handle.result()
    assert result.status == ApplicationStatus.APPROVED
    assert [d.expert for d in result.decisions] == [first.expert, second.expert]
    assert result.benefit is not None and result.benefit.valid_to is not None
    assert (result.benefit.valid_to - result.benefit.valid_from).days == 729
    sms = await support.outbox(world.db, handle.id)
    assert [s.template for s in sms] == ["submitted", "approved"]
    assert sms[-1].status == "sent" and sms[-1].recipient == "+8613803981234"
    async with world.db.session() as session:
        application = await session.get(Application, handle.id)
        benefit = await session.scalar(
            sa.select(Benefit).where(col(Benefit.application_id) == handle.id)
        )
    assert application is not None and application.status == ApplicationStatus.APPROVED
    assert application.closed_at is not None
    assert benefit is not None and benefit.designated_hospital_code == "H05"
    actions = await support.audit_actions(world.db, handle.id)
    assert actions.count("offer_made") == 2 and actions.count("review_approve") == 2

    # The recorded history replays on the current code without non-determinism.
    replayer = Replayer(workflows=WORKFLOWS, data_converter=world.env.client.data_converter)
    await replayer.replay_workflow(await handle.fetch_history())


async def test_instant_track_is_decided_by_one_final_review(world: World) -> None:
    handle = await world.start(application=support.form(support.LI, "DIAL"))
    offer = await support.pending_offer(handle)
    assert offer.stage == ReviewStage.FINAL_REVIEW
    await accept_and_decide(handle, offer.expert)
    result = await handle.result()
    assert result.status == ApplicationStatus.APPROVED
    assert len(result.offers) == 1 and len(result.decisions) == 1


async def test_decline_and_24h_lapse_reassign_count_strikes_and_acceptance_clears(
    world: World,
) -> None:
    async with world.db.session() as session:
        await session.exec(sa.update(Expert).values(consecutive_strikes=1))
    handle = await world.start()
    first = await support.pending_offer(handle)
    await handle.execute_update(
        ApplicationWorkflow.decline, DeclineOffer(expert=first.expert, reason="出差")
    )
    second = await support.pending_offer(handle, seq=2)
    assert second.expert != first.expert
    assert (await support.expert(world.db, first.expert)).consecutive_strikes == 2

    await world.env.sleep(timedelta(hours=23))  # inside the window: still the same offer
    assert (await support.pending_offer(handle)).seq == 2
    await world.env.sleep(timedelta(hours=1, minutes=1))  # 24 h crossed
    third = await support.pending_offer(handle, seq=3)
    assert third.expert not in {first.expert, second.expert}
    progress = await handle.query(ApplicationWorkflow.progress)
    assert [o.status for o in progress.offers[:2]] == [OfferStatus.DECLINED, OfferStatus.LAPSED]
    assert (await support.expert(world.db, second.expert)).consecutive_strikes == 2

    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=third.expert))
    assert (await support.expert(world.db, third.expert)).consecutive_strikes == 0


async def test_third_consecutive_strike_disqualifies_and_notifies_the_hospital(
    world: World,
) -> None:
    pool = (await support.experts_of(world.db, "endocrine"))[:2]
    await support.keep_only_active(world.db, "endocrine", pool)
    async with world.db.session() as session:
        await session.exec(
            sa.update(Expert).where(col(Expert.code).in_(pool)).values(consecutive_strikes=2)
        )
    handle = await world.start()
    first = await support.pending_offer(handle)
    await handle.execute_update(ApplicationWorkflow.decline, DeclineOffer(expert=first.expert))
    await support.pending_offer(handle, seq=2)

    struck = await support.expert(world.db, first.expert)
    assert struck.status == ExpertStatus.DISQUALIFIED and struck.consecutive_strikes == 3
    notices = [s for s in await support.outbox(world.db) if s.template == "expert_disqualified"]
    assert len(notices) == 1
    assert notices[0].params["expert_code"] == first.expert

    # Never drawn again: the next application in the category goes to the other expert.
    other = await world.start(application=support.form(support.LI, "DM"))
    offer = await support.pending_offer(other)
    assert offer.expert != first.expert and offer.pool_size == 1


async def test_lapsed_decision_deadline_reassigns_with_a_strike(world: World) -> None:
    handle = await world.start()
    first = await support.pending_offer(handle)
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=first.expert))
    await world.env.sleep(timedelta(hours=72, minutes=1))
    second = await support.pending_offer(handle, seq=2)
    assert second.expert != first.expert and second.stage == ReviewStage.INITIAL_REVIEW
    progress = await handle.query(ApplicationWorkflow.progress)
    assert progress.offers[0].status == OfferStatus.DECISION_LAPSED
    assert (await support.expert(world.db, first.expert)).consecutive_strikes == 1


async def test_materials_request_goes_back_to_the_same_reviewer(world: World) -> None:
    handle = await world.start()
    first = await support.pending_offer(handle)
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=first.expert))
    await handle.execute_update(
        ApplicationWorkflow.request_materials,
        RequestMaterials(expert=first.expert, note="请补充近三个月糖化血红蛋白检查"),
    )
    progress = await support.eventually(
        handle, lambda p: p.status == ApplicationStatus.MATERIALS_REQUESTED
    )
    assert progress.resubmission_deadline is not None
    new_round = await handle.execute_update(
        ApplicationWorkflow.resubmit,
        Resubmission(materials=support.items(support.material(MaterialKind.LAB_RESULT))),
    )
    assert new_round == 2
    await support.eventually(handle, lambda p: p.status == ApplicationStatus.IN_REVIEW)
    await handle.execute_update(
        ApplicationWorkflow.decide, Decide(expert=first.expert, approve=True, opinion="补充后符合")
    )
    second = await support.pending_offer(handle, seq=2)
    assert second.stage == ReviewStage.RE_REVIEW
    templates = [s.template for s in await support.outbox(world.db, handle.id)]
    assert templates == ["submitted", "materials_requested"]
    async with world.db.session() as session:
        rounds = set(
            await session.scalars(
                sa.select(col(Material.round)).where(col(Material.application_id) == handle.id)
            )
        )
    assert rounds == {1, 2}


async def test_disagreement_is_settled_by_a_third_expert(world: World) -> None:
    handle = await world.start()
    first = await support.pending_offer(handle)
    await accept_and_decide(handle, first.expert, approve=True)
    second = await support.pending_offer(handle, seq=2)
    await accept_and_decide(handle, second.expert, approve=False, opinion="并发症证据不足")
    third = await support.pending_offer(handle, seq=3)
    assert third.stage == ReviewStage.ARBITRATION
    assert third.expert not in {first.expert, second.expert}
    await accept_and_decide(handle, third.expert, approve=False, opinion="未见并发症诊断依据")
    result = await handle.result()
    assert result.status == ApplicationStatus.REJECTED
    assert [d.decision for d in result.decisions] == [
        ReviewDecision.APPROVE,
        ReviewDecision.REJECT,
        ReviewDecision.REJECT,
    ]
    rejected = (await support.outbox(world.db, handle.id))[-1]
    assert rejected.template == "rejected" and rejected.params["reason"] == "未见并发症诊断依据"


async def test_intake_returns_with_every_reason_and_accepts_the_resubmission(
    world: World,
) -> None:
    stale = date.today() - timedelta(days=400)
    handle = await world.start(
        application=support.form(
            materials=[
                support.material(hospital="H01", issued_on=stale),
                support.material(MaterialKind.LAB_RESULT, hospital="H11"),
            ]
        )
    )
    progress = await support.eventually(handle, support.waits_for_resubmission)
    assert len(progress.reasons) == 2
    assert "more than 365 days ago" in progress.reasons[0]
    assert "level-1 hospital" in progress.reasons[1]
    returned = await support.outbox(world.db, handle.id)
    assert [s.template for s in returned] == ["submitted", "returned"]

    await handle.execute_update(
        ApplicationWorkflow.resubmit,
        Resubmission(
            materials=support.items(support.material(), support.material(MaterialKind.LAB_RESULT))
        ),
    )
    offer = await support.pending_offer(handle)
    assert offer.stage == ReviewStage.INITIAL_REVIEW


async def test_returned_application_closes_after_the_window_and_frees_the_person(
    world: World,
) -> None:
    stale = date.today() - timedelta(days=400)
    handle = await world.start(
        application=support.form(materials=[support.material(issued_on=stale)])
    )
    await support.eventually(handle, lambda p: p.status == ApplicationStatus.RETURNED)
    await world.env.sleep(timedelta(days=14))
    assert (await handle.query(ApplicationWorkflow.progress)).status == ApplicationStatus.RETURNED
    await world.env.sleep(timedelta(days=1, hours=1))
    result = await handle.result()
    assert result.status == ApplicationStatus.CLOSED
    # Closed: the same person may apply for the same disease again.
    again = await world.start()
    assert again.id != handle.id


async def test_refusals_insurance_status_and_yearly_quota(world: World) -> None:
    suspended = await world.start(application=support.form(support.LIU_SUSPENDED, "COPD"))
    result = await suspended.result()
    assert result.status == ApplicationStatus.REFUSED
    assert "insurance status is suspended" in result.reasons[0]

    # Three earlier applications this year for ZHANG / COPD (decided and closed).
    async with world.db.session() as session:
        first = await session.scalar(sa.select(Application).limit(1))
        del first
        person_id = await session.scalar(
            sa.text("select id from insured_person where id_number = :n"), {"n": support.ZHANG}
        )
        now = datetime.now(UTC)
        for i in range(3):
            session.add(
                Application(
                    id=f"APP-PAST-{i}",
                    region="sanmenxia",
                    person_id=person_id,
                    disease_code="COPD",
                    year=now.year,
                    status=ApplicationStatus.REJECTED,
                    stage=ReviewStage.DONE,
                    mobile="+8615038921357",
                    case_number="BA-9",
                    diagnosing_hospital_code="H01",
                    designated_hospital_code="H05",
                    submitted_at=now - timedelta(days=10 - i),
                    closed_at=now - timedelta(days=9 - i),
                )
            )
    fourth = await world.start(application=support.form(support.ZHANG, "COPD"))
    result = await fourth.result()
    assert result.status == ApplicationStatus.REFUSED
    assert "at most 3 per person, disease and calendar year" in result.reasons[0]
    assert [s.template for s in await support.outbox(world.db, fourth.id)] == [
        "submitted",
        "rejected",
    ]


async def test_validators_refuse_wrong_actions_without_history_events(world: World) -> None:
    handle = await world.start()
    offer = await support.pending_offer(handle)
    others = [e for e in await support.experts_of(world.db, "endocrine") if e != offer.expert]

    async def refused(update: object, action: object, expected: str) -> None:
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await handle.execute_update(update, action)  # type: ignore[call-overload]
        assert expected in str(failure.value.cause)

    await refused(ApplicationWorkflow.accept, AcceptOffer(expert=others[0]), "not offered to")
    await refused(
        ApplicationWorkflow.decide,
        Decide(expert=offer.expert, approve=True),
        "has not accepted this application yet",
    )
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=offer.expert))
    await refused(ApplicationWorkflow.accept, AcceptOffer(expert=offer.expert), "already accepted")
    await refused(
        ApplicationWorkflow.decide,
        Decide(expert=offer.expert, approve=False, opinion=" "),
        "a rejection needs an opinion",
    )
    await refused(
        ApplicationWorkflow.resubmit,
        Resubmission(materials=support.items(support.material())),
        "does not wait for materials",
    )
    history = await handle.fetch_history()
    accepted = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert len(accepted) == 1  # only the one valid accept left a trace


async def test_an_offer_lapsed_after_24h_cannot_be_accepted(world: World) -> None:
    handle = await world.start()
    offer = await support.pending_offer(handle)
    await world.env.sleep(timedelta(hours=24, minutes=1))
    await support.pending_offer(handle, seq=2)
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=offer.expert))
    assert "lapsed" in str(failure.value.cause)


async def test_no_eligible_expert_waits_visibly_and_draws_again(world: World) -> None:
    pool = await support.experts_of(world.db, "endocrine")
    await support.keep_only_active(world.db, "endocrine", [])
    handle = await world.start()
    progress = await support.eventually(handle, lambda p: "no eligible" in p.waiting_for)
    assert progress.current_offer is None and progress.status == ApplicationStatus.IN_REVIEW
    async with world.db.session() as session:
        await session.exec(
            sa.update(Expert).where(col(Expert.code) == pool[0]).values(status=ExpertStatus.ACTIVE)
        )
    await world.env.sleep(timedelta(hours=1, minutes=1))
    offer = await support.pending_offer(handle)
    assert offer.expert == pool[0] and offer.pool_size == 1


async def test_ten_concurrent_submissions_start_exactly_one(world: World) -> None:
    outcomes = await asyncio.gather(
        *(
            submit(
                support.form(support.LI, "CHD"),
                client=world.env.client,
                db=world.db,
                settings=world.settings,
                search_attributes=False,
            )
            for _ in range(10)
        ),
        return_exceptions=True,
    )
    started = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if isinstance(o, SubmissionRefused)]
    assert len(started) == 1 and len(refused) == 9
    assert started[0] in refused[0].problems[0]
    async with world.db.session() as session:
        count = await session.scalar(
            sa.select(sa.func.count())
            .select_from(Application)
            .where(col(Application.disease_code) == "CHD")
        )
    assert count == 1


async def test_sla_due_date_on_working_days_and_breach_flag(world: World) -> None:
    handle = await world.start(policy=support.short_policy(accept_window=timedelta(days=30)))
    progress = await support.eventually(handle, lambda p: p.sla_due_at is not None)
    assert progress.sla_due_at is not None
    assert progress.sla_due_at - progress.submitted_at >= timedelta(days=8)
    assert not progress.sla_breached
    await world.env.sleep(timedelta(days=20))
    progress = await handle.query(ApplicationWorkflow.progress)
    assert progress.sla_breached

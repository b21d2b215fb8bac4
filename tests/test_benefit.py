"""The benefit after approval (issue 12): its own workflow, from the approval to its end.

On the time-skipping server with the product's workers: an approval starts
``benefit-<application id>``; designated-hospital changes are limited per calendar year as each
region's policy says (Sanmenxia twice, Wuhan once, Jilin unlimited) and allowed again in the
next year; only hospitals of the region's register; Jilin's hospital stays suspend and resume
the benefit; a benefit with an end date is reminded and ends with an SMS; a long-term one has
no timer; a long life continues as new with its state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.service import RPCError

from models.benefit import (
    BenefitStatus,
    BenefitView,
    ChangeDesignation,
    DesignationKind,
    RecordStay,
    Revoke,
    workflow_id,
)
from models.domain import SmsStatus
from models.messages import AcceptOffer, Decide, HospitalOpinion, OfficeAccept, OfficeConfirm
from models.policy import PolicyProfile
from models.tables import Benefit, BenefitEventRow, Settlement, SmsOutbox
from tests import support
from tests.fixtures.world import World
from tests.test_regions import JILIN, TONGJI, WUHAN, _jilin_form, _jilin_world, wuhan_form
from tests.test_regions import wuhan_register as _wuhan_register
from workflows.application import (
    BENEFIT_WORKFLOW_PATCH,
    EXPERT_SMS_PATCH,
    GENERATION,
    ApplicationWorkflow,
)
from workflows.benefit import BenefitWorkflow
from workflows.sms import AS_ACTIVITY

CST = timezone(timedelta(hours=8))
BenefitHandle = WorkflowHandle[BenefitWorkflow, BenefitView]


# ---- getting to an approval in each region -------------------------------------------------------


async def _approve_sanmenxia(world: World, policy: PolicyProfile | None = None) -> str:
    """An instant-track application (one final review) approved; its ID."""
    handle = await world.start(application=support.form(support.LI, "DIAL"), policy=policy)
    offer = await support.pending_offer(handle)
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=offer.expert))
    await handle.execute_update(
        ApplicationWorkflow.decide, Decide(expert=offer.expert, approve=True, opinion="符合")
    )
    assert (await handle.result()).status == "approved"
    return handle.id


async def _approve_wuhan(world: World) -> str:
    person = await _wuhan_register(world.db)
    handle = await world.start(application=wuhan_form(person, "CA", TONGJI), policy=WUHAN)
    await support.eventually(handle, lambda p: "accept or return" in p.waiting_for)
    wf = ApplicationWorkflow
    await handle.execute_update(wf.office_accept, OfficeAccept(clerk="clerk:r"))
    await handle.execute_update(wf.hospital_opinion, HospitalOpinion(hospital=TONGJI, approve=True))
    await support.eventually(handle, lambda p: p.stage == "office_confirmation")
    await handle.execute_update(wf.office_confirm, OfficeConfirm(clerk="clerk:r", confirm=True))
    assert (await handle.result()).status == "approved"
    return handle.id


async def _approve_jilin(world: World, policy: PolicyProfile = JILIN) -> str:
    person = await _jilin_world(world)
    handle = await world.start(application=_jilin_form(person), policy=policy)
    await support.eventually(handle, lambda p: p.stage == "hospital_assessment")
    await handle.execute_update(
        ApplicationWorkflow.hospital_opinion, HospitalOpinion(hospital="JL02", approve=True)
    )
    assert (await handle.result()).status == "approved"
    return handle.id


async def _benefit(world: World, application_id: str) -> BenefitHandle:
    """The benefit's workflow once it holds its records (register read, first event written)."""
    handle = world.env.client.get_workflow_handle_for(
        BenefitWorkflow.run, workflow_id(application_id)
    )
    await _until(handle, lambda v: "records" not in v.waiting_for)
    return handle


async def _until(
    handle: BenefitHandle, condition: Callable[[BenefitView], bool], within: float = 20
) -> BenefitView:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            view = await handle.query(BenefitWorkflow.view)
            if condition(view):
                return view
        except RPCError:  # not started yet, or between runs
            view = None
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met; last view: {view!r}")
        await asyncio.sleep(0.1)


async def _change(handle: BenefitHandle, code: str, kind: str = "hospital") -> BenefitView:
    return await handle.execute_update(
        BenefitWorkflow.change_designation,
        ChangeDesignation(kind=DesignationKind(kind), code=code, actor="clerk:zhao"),
    )


async def _refused(call: Any, *expected: str) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await call
    message = str(refused.value.cause)
    for part in expected:
        assert part in message, message
    return message


async def _sent(world: World, application_id: str, template: str, within: float = 20) -> list[str]:
    """The dedup keys of the application's sent SMS of ``template`` once there is one."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        keys = await _sms_keys(world, application_id, template)
        if keys:
            return keys
        assert asyncio.get_running_loop().time() < deadline, f"no {template} SMS sent"
        await asyncio.sleep(0.2)


async def _sms_keys(world: World, application_id: str, template: str) -> list[str]:
    async with world.db.session() as session:
        return list(
            await session.scalars(
                sa.select(col(SmsOutbox.dedup_key)).where(
                    col(SmsOutbox.application_id) == application_id,
                    col(SmsOutbox.template) == template,
                    col(SmsOutbox.status) == SmsStatus.SENT,
                )
            )
        )


async def _row(world: World, application_id: str) -> Benefit:
    async with world.db.session() as session:
        row = await session.scalar(
            sa.select(Benefit).where(col(Benefit.application_id) == application_id)
        )
        assert row is not None
        return row


async def _into_next_year(world: World) -> int:
    """Sleep past the next 1 January in the region's time; returns the new year.

    One hour past local midnight it is still 31 December in UTC: a change allowed then proves
    the limit counts the region's calendar year.
    """
    now = (await world.env.get_current_time()).astimezone(CST)
    new_year = datetime(now.year + 1, 1, 1, tzinfo=CST)
    await world.env.sleep(new_year - now + timedelta(hours=1))
    return now.year + 1


async def _year(world: World) -> int:
    return (await world.env.get_current_time()).astimezone(CST).year


# ---- the start -----------------------------------------------------------------------------------


async def test_an_approval_starts_the_benefit_workflow_with_the_certificate(world: World) -> None:
    app_id = await _approve_sanmenxia(world)
    handle = await _benefit(world, app_id)
    view = await handle.query(BenefitWorkflow.view)
    assert handle.id == f"benefit-{app_id}"
    assert view.status == BenefitStatus.ACTIVE and view.region == "sanmenxia"
    assert view.designated_hospital_code == "H05" and view.designated_hospital_name
    assert view.valid_to == view.valid_from + timedelta(days=729)
    assert view.changes_per_year == 2 and view.ends_at is not None
    assert view.reminder_at == view.ends_at - timedelta(days=30)

    row = await _row(world, app_id)
    assert (row.status, row.event_seq) == ("active", 1)
    assert "benefit_started" in await support.audit_actions(world.db, app_id)
    # The approval's history marks, once, the generation of the releases that start
    # benefits, send SMS as activities and push offers to the expert (older histories
    # replay without them, or with one marker per change).
    history = await world.env.client.get_workflow_handle(app_id).fetch_history()
    markers = [
        e.marker_recorded_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    assert [m.marker_name for m in markers] == ["core_patch"]
    [patch] = markers[0].details["patch-data"].payloads
    assert GENERATION.marker.encode() in patch.data
    assert {BENEFIT_WORKFLOW_PATCH, EXPERT_SMS_PATCH, AS_ACTIVITY} <= GENERATION.changes


# ---- designated hospital changes per region ------------------------------------------------------


async def test_sanmenxia_allows_two_hospital_changes_a_year_and_more_in_the_next(
    world: World,
) -> None:
    app_id = await _approve_sanmenxia(world)
    handle = await _benefit(world, app_id)
    await _change(handle, "H02")
    changed = await _change(handle, "H03")
    assert changed.designated_hospital_code == "H03"
    assert changed.changes_this_year == {"hospital": 2, "pharmacy": 0}
    year = await _year(world)
    await _refused(
        _change(handle, "H04"),
        "already changed twice in " + str(year),
        "sanmenxia allows twice per calendar year",
        f"the next change is possible from {year + 1}-01-01",
    )
    assert (await handle.query(BenefitWorkflow.view)).next_change_from == {
        "hospital": date(year + 1, 1, 1)
    }
    await _into_next_year(world)
    again = await _change(handle, "H04")
    assert (
        again.designated_hospital_code == "H04"
        and again.changes_this_year[DesignationKind.HOSPITAL] == 1
    )

    row = await _row(world, app_id)
    assert row.designated_hospital_code == "H04" and row.event_seq == 4
    assert (
        await support.audit_actors(world.db, app_id, "benefit_hospital_changed")
        == ["clerk:zhao"] * 3
    )
    keys = await _sent(world, app_id, "benefit_designation_changed")
    await _until(handle, lambda v: True)
    assert len(keys) >= 1


async def test_wuhan_allows_one_change_a_year(world: World) -> None:
    app_id = await _approve_wuhan(world)
    handle = await _benefit(world, app_id)
    await _change(handle, "W02")
    year = await _year(world)
    await _refused(
        _change(handle, "W03"),
        f"already changed once in {year}",
        "wuhan allows once per calendar year",
        f"{year + 1}-01-01",
    )
    await _into_next_year(world)
    assert (await _change(handle, "W03")).designated_hospital_code == "W03"


async def test_two_changes_at_once_for_the_last_one_of_the_year_one_is_refused(
    world: World,
) -> None:
    app_id = await _approve_wuhan(world)
    handle = await _benefit(world, app_id)
    outcomes = await asyncio.gather(
        _change(handle, "W02"), _change(handle, "W03"), return_exceptions=True
    )
    done = [o for o in outcomes if isinstance(o, BenefitView)]
    refused = [o for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
    assert len(done) == 1 and len(refused) == 1, outcomes
    assert "wuhan allows once per calendar year" in str(refused[0].cause)
    assert (await _row(world, app_id)).designated_hospital_code == done[0].designated_hospital_code


async def test_jilin_changes_several_times_a_year(world: World) -> None:
    app_id = await _approve_jilin(world)
    handle = await _benefit(world, app_id)
    for code in ("JL01", "JL03", "JL04", "JL05", "JL01"):
        view = await _change(handle, code)
    assert view.designated_hospital_code == "JL01"
    assert view.changes_per_year is None and view.changes_this_year[DesignationKind.HOSPITAL] == 5
    assert view.next_change_from == {}


async def test_a_hospital_outside_the_register_or_the_same_one_is_refused(world: World) -> None:
    app_id = await _approve_sanmenxia(world)
    handle = await _benefit(world, app_id)
    await _refused(_change(handle, "W01"), "no hospital with code W01 in the sanmenxia register")
    await _refused(_change(handle, "H05"), "H05 is already the designated hospital")
    await _refused(_change(handle, "同济医院"), "is not a hospital code")
    # Refused at the door: nothing was written, the limit is untouched.
    view = await handle.query(BenefitWorkflow.view)
    assert view.changes_this_year[DesignationKind.HOSPITAL] == 0
    assert (await _row(world, app_id)).event_seq == 1


async def test_the_pharmacy_changes_through_the_same_door_with_its_own_count(
    world: World,
) -> None:
    app_id = await _approve_wuhan(world)
    handle = await _benefit(world, app_id)
    # Checked against the pharmacy register when written: refused, nothing changed.
    await _refused(_change(handle, "P01", "pharmacy"), "no pharmacy with code P01 in the wuhan")
    changed = await _change(handle, "WP03", "pharmacy")
    assert (
        changed.pharmacy_code == "WP03" and changed.changes_this_year[DesignationKind.PHARMACY] == 1
    )
    await _refused(_change(handle, "WP02", "pharmacy"), "pharmacy", "once per calendar year")
    await _refused(_change(handle, "药店", "pharmacy"), "is not a pharmacy code")
    assert (await _change(handle, "W02")).designated_hospital_code == "W02"  # hospital: its own
    assert (await _row(world, app_id)).pharmacy_code == "WP03"


# ---- hospital stays (Jilin) ---------------------------------------------------------------------


async def test_jilin_admission_suspends_and_discharge_resumes_the_benefit(world: World) -> None:
    app_id = await _approve_jilin(world)
    handle = await _benefit(world, app_id)
    today = (await world.env.get_current_time()).astimezone(CST).date()
    await _refused(
        handle.execute_update(BenefitWorkflow.discharge, RecordStay(on=today, actor="clerk:a")),
        "not admitted",
    )
    await _refused(
        handle.execute_update(
            BenefitWorkflow.admit, RecordStay(on=today + timedelta(days=1), actor="clerk:a")
        ),
        "in the future",
    )
    admitted = await handle.execute_update(
        BenefitWorkflow.admit, RecordStay(on=today, actor="clerk:a")
    )
    assert admitted.status == BenefitStatus.SUSPENDED and admitted.in_hospital_since == today
    row = await _row(world, app_id)
    assert (row.status, row.in_hospital_since) == ("suspended", today)
    await _refused(
        handle.execute_update(BenefitWorkflow.admit, RecordStay(on=today, actor="clerk:a")),
        f"already admitted on {today}",
    )
    await world.env.sleep(timedelta(days=3))
    discharged = await handle.execute_update(
        BenefitWorkflow.discharge, RecordStay(on=today + timedelta(days=3), actor="clerk:b")
    )
    assert discharged.status == BenefitStatus.ACTIVE and discharged.in_hospital_since is None
    assert [(s.admitted_on, s.discharged_on) for s in discharged.stays] == [
        (today, today + timedelta(days=3))
    ]
    row = await _row(world, app_id)
    assert (row.status, row.in_hospital_since) == ("active", None)
    assert await support.audit_actors(world.db, app_id, "benefit_admitted") == ["clerk:a"]
    assert await support.audit_actors(world.db, app_id, "benefit_discharged") == ["clerk:b"]
    await _sent(world, app_id, "benefit_suspended")
    await _sent(world, app_id, "benefit_resumed")
    async with world.db.session() as session:
        kinds = list(
            await session.scalars(
                sa.select(col(BenefitEventRow.kind))
                .where(col(BenefitEventRow.application_id) == app_id)
                .order_by(col(BenefitEventRow.seq))
            )
        )
    assert kinds == ["started", "admitted", "discharged"]


async def test_an_admission_is_refused_where_the_policy_does_not_suspend(world: World) -> None:
    app_id = await _approve_sanmenxia(world)
    handle = await _benefit(world, app_id)
    today = (await world.env.get_current_time()).astimezone(CST).date()
    await _refused(
        handle.execute_update(BenefitWorkflow.admit, RecordStay(on=today, actor="clerk:a")),
        "the sanmenxia policy does not suspend the benefit during a hospital stay",
    )
    assert (await handle.query(BenefitWorkflow.view)).status == BenefitStatus.ACTIVE


async def test_an_audit_revocation_ends_the_benefit_and_refuses_changes(world: World) -> None:
    app_id = await _approve_sanmenxia(world)
    handle = await _benefit(world, app_id)
    today = (await world.env.get_current_time()).astimezone(CST).date()
    await _refused(
        handle.execute_update(
            BenefitWorkflow.revoke, Revoke(on=today, reason=" ", actor="operator:audit")
        ),
        "say why",
    )
    revoked = await handle.execute_update(
        BenefitWorkflow.revoke, Revoke(on=today, reason="申报材料经核查不实", actor="operator:a")
    )
    assert revoked.status == BenefitStatus.REVOKED and revoked.valid_to == today
    result = await handle.result()
    assert result.status == BenefitStatus.REVOKED and result.ended_at is not None
    row = await _row(world, app_id)
    assert (row.status, row.valid_to) == ("revoked", today)
    assert await support.audit_actors(world.db, app_id, "benefit_revoked") == ["operator:a"]
    assert await _sms_keys(world, app_id, "benefit_ended") == []  # the audit tells the person


# ---- validity ---------------------------------------------------------------------------------


async def test_a_benefit_is_reminded_before_its_end_and_ends_with_an_sms(world: World) -> None:
    policy = support.short_policy(benefit_validity=timedelta(days=400))
    app_id = await _approve_sanmenxia(world, policy)
    handle = await _benefit(world, app_id)
    view = await handle.query(BenefitWorkflow.view)
    assert view.valid_to is not None and view.reminder_at is not None and view.ends_at
    assert view.valid_to.year > view.valid_from.year  # across a new year

    now = await world.env.get_current_time()
    await world.env.sleep(view.reminder_at - now - timedelta(days=1))
    assert await _sms_keys(world, app_id, "benefit_ending") == []
    await world.env.sleep(timedelta(days=2))
    assert await _sent(world, app_id, "benefit_ending") == [
        f"benefit-{app_id}:ending:{view.valid_to}"
    ]
    reminded = await handle.query(BenefitWorkflow.view)
    assert reminded.status == BenefitStatus.ACTIVE and reminded.reminder_at is None

    await world.env.sleep(timedelta(days=29))
    ended = await handle.result()
    assert ended.status == BenefitStatus.ENDED and ended.ended_at is not None
    assert ended.ended_at >= view.ends_at
    assert await _sent(world, app_id, "benefit_ended") == [f"benefit-{app_id}:ended"]
    assert (await _row(world, app_id)).status == "ended"
    assert "benefit_ended" in await support.audit_actions(world.db, app_id)


async def _settle(
    world: World, application_id: str, ends_on: date, normal: int, abnormal: int = 0
) -> None:
    """Settlements of the benefit's person and disease: ``normal`` normal months ending with
    the month of ``ends_on``, then ``abnormal`` months (refused) before those."""
    row = await _row(world, application_id)
    month = ends_on.replace(day=1)
    async with world.db.session() as session:
        for n in range(normal + abnormal):
            session.add(
                Settlement(
                    person_id=row.person_id,
                    disease_code=row.disease_code,
                    month=month,
                    normal=n < normal,
                    imported_at=datetime.now(CST),
                )
            )
            month = (month - timedelta(days=1)).replace(day=1)


async def test_a_benefit_renews_twice_on_its_settlements_then_ends_with_its_history_bounded(
    world: World,
) -> None:
    limit = 40
    policy = support.short_policy(benefit_validity=timedelta(days=400)).model_copy(
        update={"benefit_history_event_limit": limit}
    )
    app_id = await _approve_sanmenxia(world, policy)
    handle = await _benefit(world, app_id)
    first_end = (await handle.query(BenefitWorkflow.view)).valid_to
    assert first_end is not None
    second_end, third_end = first_end + timedelta(days=400), first_end + timedelta(days=800)
    # Seed 002: at least 6 months of normal settlements in the 12 before the end date.
    await _settle(world, app_id, first_end, normal=6)
    await _settle(world, app_id, second_end, normal=6)
    await _settle(world, app_id, third_end, normal=5, abnormal=3)  # one month short

    now = await world.env.get_current_time()
    end_of_third = datetime.combine(third_end, datetime.min.time(), tzinfo=CST)
    await world.env.sleep(end_of_third - now + timedelta(days=2))
    ended = await handle.result()  # follows the continued runs

    assert ended.status == BenefitStatus.ENDED and ended.valid_to == third_end
    assert sorted(await _sent(world, app_id, "benefit_renewed")) == sorted(
        [f"benefit-{app_id}:renewed:{second_end}", f"benefit-{app_id}:renewed:{third_end}"]
    )
    assert await _sent(world, app_id, "benefit_ended") == [f"benefit-{app_id}:ended"]
    row = await _row(world, app_id)
    assert (row.status, row.valid_to) == ("ended", third_end)
    actions = await support.audit_actions(world.db, app_id)
    assert actions.count("benefit_renewal_checked") == 3 and actions.count("benefit_renewed") == 2
    # Years of life, a bounded history: it went on in a fresh run, which stays near the limit.
    history = await _continued(world, handle.id)
    assert len(history.events) < limit + 30


async def test_a_long_term_jilin_benefit_has_no_end_timer(world: World) -> None:
    app_id = await _approve_jilin(world)
    handle = await _benefit(world, app_id)
    view = await handle.query(BenefitWorkflow.view)
    assert view.valid_to is None and view.ends_at is None and view.reminder_at is None
    await world.env.sleep(timedelta(days=3650))
    view = await handle.query(BenefitWorkflow.view)
    assert view.status == BenefitStatus.ACTIVE and "long-term" in view.waiting_for
    history = await handle.fetch_history()
    assert not [e for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    assert await _sms_keys(world, app_id, "benefit_ending") == []


# ---- a long life keeps a bounded history ----------------------------------------------------


async def test_many_changes_continue_as_new_with_the_state(world: World) -> None:
    limit = 40
    app_id = await _approve_jilin(
        world, JILIN.model_copy(update={"benefit_history_event_limit": limit})
    )
    handle = await _benefit(world, app_id)
    today = (await world.env.get_current_time()).astimezone(CST).date()
    codes = ("JL01", "JL03", "JL04", "JL05") * 3
    for code in codes:
        await _change(handle, code)
        await _until(handle, _holds(code))
    await handle.execute_update(BenefitWorkflow.admit, RecordStay(on=today, actor="clerk:a"))

    history = await _continued(world, handle.id)
    view = await _until(handle, lambda v: v.status == BenefitStatus.SUSPENDED)
    assert view.designated_hospital_code == "JL05"
    assert view.changes_this_year[DesignationKind.HOSPITAL] == len(codes)
    assert view.in_hospital_since == today
    # Each run stays near the limit (a change in flight finishes before the new run).
    assert len(history.events) < limit + 30
    row = await _row(world, app_id)
    assert row.event_seq == len(codes) + 2 and row.status == "suspended"


async def _continued(world: World, workflow_id: str, within: float = 20) -> WorkflowHistory:
    """The history of the workflow's latest run once that run is a continuation."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        history = await world.env.client.get_workflow_handle(workflow_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        if started.continued_execution_run_id:
            return history
        assert asyncio.get_running_loop().time() < deadline, (
            f"never continued as new: {len(history.events)} events"
        )
        await asyncio.sleep(0.2)


def _holds(code: str) -> Callable[[BenefitView], bool]:
    return lambda view: view.designated_hospital_code == code

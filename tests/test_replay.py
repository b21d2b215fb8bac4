"""Released workflow code must still replay the histories it recorded.

``tests/histories/<region>/*.json`` are histories of real runs on the time-skipping server, one
per path of the process, recorded with the test-only key ``replay-1``
(``tests/histories/replay-key.txt``). Any change to workflow code that would make a running
application fail on a worker after a deploy (non-determinism) fails here first; such a change
goes through ``workflow.patched`` or worker versioning. To record them again (after a change
that is meant to be incompatible, with a new workflow type or version):

    CHRONIC_RECORD_HISTORIES=1 CHRONIC_CODEC_CURRENT_KEY_ID=replay-1 \
        uv run pytest tests/test_replay.py -k "record and (wuhan or jilin)"
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer

from chronic.temporal_client import data_converter
from models.benefit import RecordStay
from models.domain import ApplicationStatus, MaterialKind
from models.messages import (
    AcceptOffer,
    CloseApplication,
    Decide,
    HospitalOpinion,
    OfficeAccept,
    OfficeConfirm,
    OfficeReturn,
    RequestMaterials,
    Resubmission,
    ScheduleExamination,
)
from tests import support
from tests.fixtures.world import World
from workflows import WORKFLOWS
from workflows.application import (
    BENEFIT_WORKFLOW_PATCH,
    DECISION_IN_ONE_STEP,
    EXPERT_SMS_PATCH,
    GENERATION,
    ApplicationWorkflow,
)
from workflows.benefit import BenefitWorkflow
from workflows.sms import AS_ACTIVITY

HISTORIES = Path(__file__).parent / "histories"
RECORDED = {
    f"{path.parent.name}/{path.stem}": path.read_text(encoding="utf-8")
    for path in sorted(HISTORIES.glob("*/*.json"))
}


@pytest.mark.parametrize("name", list(RECORDED))
async def test_recorded_history_replays(name: str) -> None:
    history = WorkflowHistory.from_json(name, RECORDED[name])
    replayer = Replayer(workflows=WORKFLOWS, data_converter=data_converter())
    await replayer.replay_workflow(history)


def test_every_region_has_recorded_histories() -> None:
    assert {name.split("/")[0] for name in RECORDED} >= {"sanmenxia", "wuhan", "jilin"}


def _patch_markers(name: str) -> list[str]:
    history = WorkflowHistory.from_json(name, RECORDED[name])
    return [
        e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data.decode()
        for e in history.events
        if e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]


def test_a_run_of_this_release_records_one_patch_for_all_its_changes() -> None:
    """Earlier runs recorded a marker (and a search-attribute upsert) per change they met; a
    run of the generation records the generation's only, and both replay (above)."""
    earlier = _patch_markers("sanmenxia/expert-reminded-then-approves")
    assert len(earlier) == 3 and not any(GENERATION.marker in m for m in earlier), earlier
    [marker] = _patch_markers("sanmenxia/generation-2026-12-two-stage-approval")
    assert GENERATION.marker in marker
    assert GENERATION.changes == {
        AS_ACTIVITY,
        BENEFIT_WORKFLOW_PATCH,
        EXPERT_SMS_PATCH,
        DECISION_IN_ONE_STEP,
    }


# ---- recording -------------------------------------------------------------------------------


async def _accept_and_decide(handle: support.Handle, approve: bool = True) -> None:
    offer = await support.pending_offer(handle)
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=offer.expert))
    await handle.execute_update(
        ApplicationWorkflow.decide,
        Decide(expert=offer.expert, approve=approve, opinion="符合认定标准" if approve else "不符"),
    )


async def _two_stage_approval(world: World) -> support.Handle:
    handle = await world.start()
    await _accept_and_decide(handle)
    await _accept_and_decide(handle)
    return handle


async def _instant_track(world: World) -> support.Handle:
    handle = await world.start(application=support.form(support.LI, "DIAL"))
    await _accept_and_decide(handle)
    return handle


async def _materials_requested_then_rejected(world: World) -> support.Handle:
    handle = await world.start(application=support.form(support.ZHANG, "CHD"))
    offer = await support.pending_offer(handle)
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=offer.expert))
    await handle.execute_update(
        ApplicationWorkflow.request_materials,
        RequestMaterials(expert=offer.expert, note="请补充近一年检验报告"),
    )
    await support.eventually(handle, support.waits_for_resubmission)
    await handle.execute_update(
        ApplicationWorkflow.resubmit,
        Resubmission(materials=support.items(support.material(MaterialKind.LAB_RESULT))),
    )
    await support.eventually(handle, lambda p: "decide" in p.waiting_for)
    await handle.execute_update(
        ApplicationWorkflow.decide, Decide(expert=offer.expert, approve=False, opinion="不符")
    )
    await _accept_and_decide(handle, approve=False)
    return handle


async def _returned_and_never_resubmitted(world: World) -> support.Handle:
    stale = date.today() - timedelta(days=400)
    handle = await world.start(
        application=support.form(support.WANG, "CHD", materials=[support.material(issued_on=stale)])
    )
    await support.eventually(handle, lambda p: p.status == ApplicationStatus.RETURNED)
    await world.env.sleep(timedelta(days=16))
    return handle


async def _lapse_then_office_close(world: World) -> support.Handle:
    handle = await world.start(application=support.form(support.LI, "DM"))
    await support.pending_offer(handle)
    await world.env.sleep(timedelta(hours=24, minutes=1))
    await support.pending_offer(handle, seq=2)
    await handle.execute_update(
        ApplicationWorkflow.close, CloseApplication(actor="operator:replay", reason="申请人撤回")
    )
    return handle


async def _expert_reminded_then_approves(world: World) -> support.Handle:
    """The offer SMS, the reminder 4 h before the window closes, then an answer in time."""
    handle = await world.start(application=support.form(support.LI, "DIAL"))
    await support.pending_offer(handle)
    await world.env.sleep(timedelta(hours=21))
    await _accept_and_decide(handle)
    return handle


async def _wuhan_track_a(world: World) -> support.Handle:
    from tests.test_regions import TONGJI, WUHAN, wuhan_form, wuhan_register

    person = await wuhan_register(world.db)
    handle = await world.start(application=wuhan_form(person, "CA", TONGJI), policy=WUHAN)
    await support.eventually(handle, lambda p: "accept or return" in p.waiting_for)
    await handle.execute_update(ApplicationWorkflow.office_accept, OfficeAccept(clerk="clerk:r"))
    await handle.execute_update(
        ApplicationWorkflow.hospital_opinion, HospitalOpinion(hospital=TONGJI, approve=True)
    )
    await support.eventually(handle, lambda p: p.stage == "office_confirmation")
    await handle.execute_update(
        ApplicationWorkflow.office_confirm, OfficeConfirm(clerk="clerk:r", confirm=True)
    )
    return handle


async def _wuhan_track_b_returned_examined(world: World) -> support.Handle:
    from tests.test_regions import ASSESSOR, ERJIA, WUHAN, wuhan_form, wuhan_register

    person = await wuhan_register(world.db)
    handle = await world.start(application=wuhan_form(person, "DM", ERJIA), policy=WUHAN)
    await support.eventually(handle, lambda p: "accept or return" in p.waiting_for)
    await handle.execute_update(
        ApplicationWorkflow.office_return, OfficeReturn(clerk="clerk:r", reasons="病种不符")
    )
    await support.eventually(handle, support.waits_for_resubmission)
    await handle.execute_update(
        ApplicationWorkflow.resubmit,
        Resubmission(materials=support.items(support.material(hospital=ERJIA))),
    )
    await support.eventually(handle, lambda p: "accept or return" in p.waiting_for)
    await handle.execute_update(
        ApplicationWorkflow.office_accept, OfficeAccept(clerk="clerk:r", hospital=ASSESSOR)
    )
    progress = await handle.query(ApplicationWorkflow.progress)
    await handle.execute_update(
        ApplicationWorkflow.schedule_examination,
        ScheduleExamination(
            hospital=ASSESSOR, at=progress.submitted_at + timedelta(days=3), place="门诊楼"
        ),
    )
    await handle.execute_update(
        ApplicationWorkflow.hospital_opinion,
        HospitalOpinion(hospital=ASSESSOR, approve=False, opinion="证据不足"),
    )
    await support.eventually(handle, lambda p: p.stage == "office_confirmation")
    await handle.execute_update(
        ApplicationWorkflow.office_confirm, OfficeConfirm(clerk="clerk:r", confirm=True)
    )
    return handle


async def _jilin_local_instant(world: World) -> support.Handle:
    from tests.test_regions import JILIN, _jilin_form, _jilin_world

    person = await _jilin_world(world)
    handle = await world.start(application=_jilin_form(person), policy=JILIN)
    await support.eventually(handle, lambda p: p.stage == "hospital_assessment")
    await handle.execute_update(
        ApplicationWorkflow.hospital_opinion, HospitalOpinion(hospital="JL02", approve=True)
    )
    return handle


async def _benefit_changed_reminded_ended(world: World) -> WorkflowHandle[Any, Any]:
    """A Sanmenxia benefit of 60 days: a hospital change, a refused one, reminder, end."""
    from tests.test_benefit import _approve_sanmenxia, _benefit, _change, _refused

    policy = support.short_policy(benefit_validity=timedelta(days=60))
    handle = await _benefit(world, await _approve_sanmenxia(world, policy))
    await _change(handle, "H02")
    await _change(handle, "H03")
    await _refused(_change(handle, "H04"), "twice")
    await _change(handle, "P01", "pharmacy")
    await world.env.sleep(timedelta(days=61))
    return handle


async def _benefit_stay_and_change(world: World) -> WorkflowHandle[Any, Any]:
    """A long-term Jilin benefit: a change, an admission and a discharge (it lives on)."""
    from tests.test_benefit import CST, _approve_jilin, _benefit, _change

    handle = await _benefit(world, await _approve_jilin(world))
    await _change(handle, "JL01")
    today = (await world.env.get_current_time()).astimezone(CST).date()
    await handle.execute_update(BenefitWorkflow.admit, RecordStay(on=today, actor="clerk:r"))
    await world.env.sleep(timedelta(days=2))
    await handle.execute_update(
        BenefitWorkflow.discharge, RecordStay(on=today + timedelta(days=2), actor="clerk:r")
    )
    return handle


LIVING = {"jilin/benefit-stay-and-change"}
"""Scenarios recorded while their workflow still runs (a long-term benefit never ends)."""

SCENARIOS: dict[str, Callable[[World], Awaitable[WorkflowHandle[Any, Any]]]] = {
    "sanmenxia/two-stage-approval": _two_stage_approval,
    "sanmenxia/instant-track": _instant_track,
    "sanmenxia/generation-2026-12-two-stage-approval": _two_stage_approval,
    "sanmenxia/materials-requested-then-rejected": _materials_requested_then_rejected,
    "sanmenxia/returned-never-resubmitted": _returned_and_never_resubmitted,
    "sanmenxia/lapse-then-office-close": _lapse_then_office_close,
    "sanmenxia/expert-reminded-then-approves": _expert_reminded_then_approves,
    "wuhan/track-a-approved": _wuhan_track_a,
    "wuhan/track-b-returned-examined-rejected": _wuhan_track_b_returned_examined,
    "jilin/local-instant-filing": _jilin_local_instant,
    "sanmenxia/benefit-changed-reminded-ended": _benefit_changed_reminded_ended,
    "jilin/benefit-stay-and-change": _benefit_stay_and_change,
}


@pytest.mark.skipif(
    not os.environ.get("CHRONIC_RECORD_HISTORIES"), reason="records histories on request only"
)
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_record_history(world: World, name: str) -> None:
    handle = await SCENARIOS[name](world)
    if name not in LIVING:
        await handle.result()
    await support.outbox(world.db, handle)
    history = await handle.fetch_history()
    target = HISTORIES / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(history.to_json(), encoding="utf-8")

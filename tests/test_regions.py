"""One engine, several processes: each region's tracks as data (issue 10).

Sanmenxia's tracks (random experts) are tested throughout the suite; here the profile model and
Wuhan's office and hospital steps on the time-skipping server: track A (the diagnosing 三甲
hospital assesses), track B (an office return, an assessment hospital named by the clerk, an
on-site examination with its SMS), the office confirming or refusing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import col
from temporalio.client import WorkflowUpdateFailedError

from chronic.db import Database
from chronic.submission import PROXY_ACTION, SubmissionRefused
from models.application import ApplicationForm
from models.domain import (
    ApplicationStatus,
    FilingStatus,
    FilingType,
    HospitalGrade,
    InsuranceType,
    ReviewDecision,
    ReviewStage,
)
from models.messages import (
    ApplicationInput,
    HospitalOpinion,
    OfficeAccept,
    OfficeConfirm,
    OfficeReturn,
    Progress,
    Resubmission,
    ScheduleExamination,
)
from models.policy import PolicyProfile, load_policy
from models.tables import Application, AuditEvent, FilingRecord, Hospital
from tests import support
from tests.fixtures.world import World
from workflows.application import ApplicationWorkflow

WUHAN = load_policy("wuhan")
TONGJI, ERJIA, ASSESSOR = "W01", "W02", "W03"  # a 三甲, a 二甲, an assessment hospital


# ---- the profile as data ------------------------------------------------------------------------


def test_sanmenxia_and_wuhan_profiles_list_their_tracks() -> None:
    sanmenxia = load_policy("sanmenxia")
    assert [t.name for t in sanmenxia.tracks] == ["instant", "standard"]
    assert [t.name for t in WUHAN.tracks] == ["a", "b"]
    assert [s.kind for s in WUHAN.tracks[1].steps] == [
        "intake_checks",
        "office_acceptance",
        "hospital_assessment",
        "office_confirmation",
    ]
    assert len(WUHAN.catalogue) == 32 and sum(d.track_a for d in WUHAN.catalogue) == 13


@pytest.mark.parametrize(
    ("disease", "grade_3a", "track"),
    [("CA", True, "a"), ("CA", False, "b"), ("DM", True, "b"), ("PKU", True, "a")],
)
def test_wuhan_track_a_needs_a_track_a_disease_diagnosed_at_a_grade_3a_hospital(
    disease: str, grade_3a: bool, track: str
) -> None:
    entry = WUHAN.disease(disease)
    assert entry is not None
    assert WUHAN.track_for(entry, diagnosed_at_grade_3a=grade_3a).name == track


def _profile(**changes: Any) -> dict[str, Any]:
    data = WUHAN.model_dump(mode="json")
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("tracks", "expected"),
    [
        ([], "the last track must apply always"),
        (
            [{"name": "x", "description": "d", "steps": [{"kind": "intake_checks"}]}],
            "has no step that decides",
        ),
        (
            [{"name": "x", "description": "d", "steps": [{"kind": "telepathy"}]}],
            "telepathy",
        ),
        (
            [
                {
                    "name": "x",
                    "description": "d",
                    "steps": [
                        {"kind": "hospital_assessment"},
                        {"kind": "instant_filing"},
                        {"kind": "office_confirmation"},
                    ],
                }
            ],
            "exclude each other",
        ),
    ],
)
def test_a_profile_whose_process_cannot_run_is_refused_with_the_reason(
    tracks: list[dict[str, Any]], expected: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        PolicyProfile.model_validate(_profile(tracks=tracks))
    assert expected in str(refused.value)


# ---- Wuhan on the time-skipping server ---------------------------------------------------------


async def _wuhan_world(world: World) -> str:
    return await wuhan_register(world.db)


async def wuhan_register(db: Database) -> str:
    """One insured person of Wuhan in the register (its hospitals are seeded); the person's ID."""
    async with db.session() as session:
        seeded = {
            h.code: (h.level, h.grade, h.region)
            for h in await session.scalars(
                sa.select(Hospital).where(col(Hospital.code).in_([TONGJI, ERJIA, ASSESSOR]))
            )
        }
    assert seeded == {
        TONGJI: (3, HospitalGrade.A, "wuhan"),
        ERJIA: (2, HospitalGrade.A, "wuhan"),
        ASSESSOR: (3, HospitalGrade.A, "wuhan"),
    }, "chronic/seed/reference/wuhan.toml changed the hospitals these tests rely on"
    id_number, _ = await support.insured_person(
        db,
        place="420106",
        born=date(1980, 1, 1),
        sequence=123,
        region="wuhan",
        insurance_type=InsuranceType.RESIDENT,
    )
    await support.register_community_health_centre(db)
    return id_number


def wuhan_form(id_number: str, disease: str, diagnosing: str, **fields: Any) -> ApplicationForm:
    return support.form(
        id_number,
        disease,
        region="wuhan",
        diagnosing_hospital=diagnosing,
        designated_hospital=diagnosing,
        **{"materials": [support.material(hospital=diagnosing)], **fields},
    )


async def _waiting(handle: support.Handle, stage: ReviewStage) -> Progress:
    """Once the stage waits for its person (not while its status is being written)."""
    return await support.eventually(
        handle,
        lambda p: (
            p.stage == stage
            and p.status == ApplicationStatus.IN_REVIEW
            and not p.waiting_for.startswith("intake")
        ),
    )


async def _refused(call: Any, expected: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await call
    assert expected in str(refused.value.cause)


async def test_wuhan_track_a_office_accepts_the_diagnosing_hospital_assesses_office_confirms(
    world: World,
) -> None:
    person = await _wuhan_world(world)
    handle = await world.start(application=wuhan_form(person, "CA", TONGJI), policy=WUHAN)
    wf = ApplicationWorkflow
    progress = await _waiting(handle, ReviewStage.OFFICE_ACCEPTANCE)
    assert progress.track == "a" and "accept or return" in progress.waiting_for
    # Track A: the diagnosing hospital assesses; naming another is refused.
    await _refused(
        handle.execute_update(wf.office_accept, OfficeAccept(clerk="clerk:zhao", hospital=ERJIA)),
        "the diagnosing hospital W01 assesses",
    )
    accepted = await handle.execute_update(wf.office_accept, OfficeAccept(clerk="clerk:zhao"))
    assert accepted.assessment_hospital == TONGJI
    # Only that hospital gives the opinion; track A has no on-site examination.
    await _refused(
        handle.execute_update(wf.hospital_opinion, HospitalOpinion(hospital=ERJIA, approve=True)),
        "not the assessment hospital",
    )
    exam = ScheduleExamination(
        hospital=TONGJI, at=progress.submitted_at + timedelta(days=3), place="门诊楼三楼"
    )
    await _refused(handle.execute_update(wf.schedule_examination, exam), "from the records only")
    opinion = await handle.execute_update(
        wf.hospital_opinion, HospitalOpinion(hospital=TONGJI, approve=True, opinion="符合")
    )
    assert opinion.decision == ReviewDecision.APPROVE and opinion.expert == f"hospital:{TONGJI}"
    decision = await handle.execute_update(
        wf.office_confirm, OfficeConfirm(clerk="clerk:zhao", confirm=True)
    )
    assert decision.stage == ReviewStage.OFFICE_CONFIRMATION

    result = await handle.result()
    assert result.status == ApplicationStatus.APPROVED and result.benefit is not None
    sms = await support.outbox(world.db, handle)
    assert [s.template for s in sms] == ["submitted", "approved"]
    actors = await _actors(world, handle.id)
    assert ("clerk:zhao", "status_in_review") in actors
    assert (f"hospital:{TONGJI}", "status_in_review") in actors


async def test_wuhan_track_b_return_resubmit_assessment_hospital_examination_then_refusal(
    world: World,
) -> None:
    person = await _wuhan_world(world)
    handle = await world.start(application=wuhan_form(person, "DM", ERJIA), policy=WUHAN)
    wf = ApplicationWorkflow
    progress = await _waiting(handle, ReviewStage.OFFICE_ACCEPTANCE)
    assert progress.track == "b"
    await _refused(
        handle.execute_update(wf.office_return, OfficeReturn(clerk="clerk:qian", reasons=" ")),
        "say why",
    )
    await handle.execute_update(
        wf.office_return, OfficeReturn(clerk="clerk:qian", reasons="诊断证明与申报病种不符")
    )
    await support.eventually(handle, support.waits_for_resubmission)
    await handle.execute_update(
        wf.resubmit, Resubmission(materials=support.items(support.material(hospital=ERJIA)))
    )
    await _waiting(handle, ReviewStage.OFFICE_ACCEPTANCE)
    await _refused(
        handle.execute_update(wf.office_accept, OfficeAccept(clerk="clerk:qian")),
        "name the assessment hospital",
    )
    await _refused(
        handle.execute_update(wf.office_accept, OfficeAccept(clerk="clerk:qian", hospital="H01")),
        "no hospital with code H01 in the wuhan register",
    )
    await handle.execute_update(
        wf.office_accept, OfficeAccept(clerk="clerk:qian", hospital=ASSESSOR)
    )
    when = (await handle.query(wf.progress)).submitted_at + timedelta(days=5)
    scheduled = await handle.execute_update(
        wf.schedule_examination,
        ScheduleExamination(hospital=ASSESSOR, at=when, place="武汉市第一医院门诊楼三楼"),
    )
    assert scheduled.examination is not None and scheduled.examination.place.startswith("武汉")
    await handle.execute_update(
        wf.hospital_opinion,
        HospitalOpinion(hospital=ASSESSOR, approve=False, opinion="现场鉴定：并发症证据不足"),
    )
    await _refused(
        handle.execute_update(wf.office_confirm, OfficeConfirm(clerk="clerk:qian", confirm=False)),
        "say why",
    )
    await handle.execute_update(wf.office_confirm, OfficeConfirm(clerk="clerk:qian", confirm=True))

    result = await handle.result()
    assert result.status == ApplicationStatus.REJECTED
    assert [d.stage for d in result.decisions] == [
        ReviewStage.HOSPITAL_ASSESSMENT,
        ReviewStage.OFFICE_CONFIRMATION,
    ]
    sms = await support.outbox(world.db, handle)
    assert [s.template for s in sms] == [
        "submitted",
        "returned",
        "examination_scheduled",
        "rejected",
    ]
    assert "武汉市第一医院" in sms[2].params["place"]
    assert "并发症证据不足" in sms[3].params["reason"]


async def test_wuhan_office_may_refuse_a_positive_opinion_with_its_reason(world: World) -> None:
    person = await _wuhan_world(world)
    handle = await world.start(application=wuhan_form(person, "CA", TONGJI), policy=WUHAN)
    wf = ApplicationWorkflow
    await _waiting(handle, ReviewStage.OFFICE_ACCEPTANCE)
    await handle.execute_update(wf.office_accept, OfficeAccept(clerk="clerk:sun"))
    await handle.execute_update(wf.hospital_opinion, HospitalOpinion(hospital=TONGJI, approve=True))
    await handle.execute_update(
        wf.office_confirm,
        OfficeConfirm(clerk="clerk:sun", confirm=False, reason="参保状态已暂停"),
    )
    result = await handle.result()
    assert result.status == ApplicationStatus.REJECTED
    assert result.decisions[-1].opinion == "参保状态已暂停"


async def test_an_office_step_past_its_window_alerts_the_desk_and_keeps_waiting(
    world: World,
) -> None:
    person = await _wuhan_world(world)
    handle = await world.start(application=wuhan_form(person, "CA", TONGJI), policy=WUHAN)
    await _waiting(handle, ReviewStage.OFFICE_ACCEPTANCE)
    await world.env.sleep(timedelta(days=6))
    async with world.db.session() as session:
        notices = list(
            await session.scalars(
                sa.text("SELECT kind FROM office_notice WHERE application_id = :a").bindparams(
                    a=handle.id
                )
            )
        )
    assert notices == ["overdue"]
    await handle.execute_update(ApplicationWorkflow.office_accept, OfficeAccept(clerk="clerk:li"))
    assert (await handle.query(ApplicationWorkflow.progress)).stage == (
        ReviewStage.HOSPITAL_ASSESSMENT
    )


async def _actors(world: World, application_id: str) -> list[tuple[str, str]]:
    async with world.db.session() as session:
        rows = await session.execute(
            sa.select(col(AuditEvent.actor), col(AuditEvent.action)).where(
                col(AuditEvent.application_id) == application_id
            )
        )
        return [(actor, action) for actor, action in rows.all()]


# ---- Jilin: assessment hospitals, instant effect, applicants living elsewhere -------------------

JILIN = load_policy("jilin")


async def _jilin_world(world: World, *, long_term_filing: bool = False) -> str:
    """One insured person of Jilin (the seeded register has the five assessment hospitals and
    JL90, a level-2 hospital)."""
    id_number, person_id = await support.insured_person(
        world.db, place="220102", born=date(1975, 3, 15), sequence=123, region="jilin"
    )
    async with world.db.session() as session:
        level_2 = await session.get(Hospital, "JL90")
        assert level_2 is not None and level_2.level == 2 and level_2.region == "jilin"
        if long_term_filing:
            today = date.today()
            session.add(
                FilingRecord(
                    id="FIL-20260101-TEST01",
                    person_id=person_id,
                    mobile="+8613803981234",
                    insured_place="220000",
                    destination_province="海南省",
                    destination_city="三亚市",
                    insurance_type=InsuranceType.EMPLOYEE,
                    filing_type=FilingType.LONG_TERM_RESIDENCE,
                    start_date=today - timedelta(days=100),
                    contact_name="测试",
                    contact_mobile="+8613803981234",
                    status=FilingStatus.FILED,
                    valid_from=today - timedelta(days=100),
                    submitted_at=datetime.now(UTC) - timedelta(days=101),
                )
            )
    return id_number


def _jilin_form(id_number: str, *, out_of_area: bool = False, **fields: Any) -> ApplicationForm:
    return support.form(
        id_number,
        "AF",
        region="jilin",
        diagnosing_hospital="JL90",
        designated_hospital="JL90",
        out_of_area=out_of_area,
        **{"materials": [support.material(hospital="JL90")], **fields},
    )


async def test_jilin_local_an_assessment_hospital_files_it_and_it_takes_effect_at_once(
    world: World,
) -> None:
    person = await _jilin_world(world)
    handle = await world.start(application=_jilin_form(person), policy=JILIN)
    wf = ApplicationWorkflow
    progress = await _waiting(handle, ReviewStage.HOSPITAL_ASSESSMENT)
    assert progress.track == "local" and "a designated assessment hospital" in progress.waiting_for
    await _refused(
        handle.execute_update(wf.hospital_opinion, HospitalOpinion(hospital="JL90", approve=True)),
        "not a designated assessment hospital of jilin",
    )
    await handle.execute_update(
        wf.hospital_opinion, HospitalOpinion(hospital="JL02", approve=True, opinion="符合")
    )
    result = await handle.result()
    assert result.status == ApplicationStatus.APPROVED
    assert [d.stage for d in result.decisions] == [ReviewStage.HOSPITAL_ASSESSMENT]
    assert result.benefit is not None and result.benefit.valid_to is None  # long-term
    approved = [s for s in await support.outbox(world.db, handle) if s.template == "approved"]
    assert len(approved) == 1 and approved[0].params["valid_to"] == "长期"


async def test_jilin_out_of_area_applicant_without_a_long_term_filing_is_refused(
    world: World,
) -> None:
    person = await _jilin_world(world)
    handle = await world.start(application=_jilin_form(person, out_of_area=True), policy=JILIN)
    result = await handle.result()
    assert result.status == ApplicationStatus.REFUSED
    assert "no valid long-term out-of-area filing" in result.reasons[0]
    rejected = [s for s in await support.outbox(world.db, handle) if s.template == "rejected"]
    assert len(rejected) == 1


async def test_jilin_out_of_area_applicant_with_a_filing_is_assessed_where_they_live(
    world: World,
) -> None:
    person = await _jilin_world(world, long_term_filing=True)
    handle = await world.start(application=_jilin_form(person, out_of_area=True), policy=JILIN)
    wf = ApplicationWorkflow
    progress = await _waiting(handle, ReviewStage.HOSPITAL_ASSESSMENT)
    assert progress.track == "out_of_area"
    await _refused(
        handle.execute_update(
            wf.hospital_opinion, HospitalOpinion(hospital="三亚医院", approve=True)
        ),
        "is not a hospital code",
    )
    exam = ScheduleExamination(
        hospital="HN0301", at=progress.submitted_at + timedelta(days=2), place="三亚市人民医院"
    )
    await handle.execute_update(wf.schedule_examination, exam)
    await _refused(
        handle.execute_update(wf.hospital_opinion, HospitalOpinion(hospital="JL01", approve=True)),
        "not the assessment hospital",
    )
    await handle.execute_update(
        wf.hospital_opinion, HospitalOpinion(hospital="HN0301", approve=True)
    )
    result = await handle.result()
    assert result.status == ApplicationStatus.APPROVED
    sms = [s.template for s in await support.outbox(world.db, handle)]
    assert sms == ["submitted", "examination_scheduled", "approved"]


# ---- the region's form at submission: registers, the row, the audit trail (issue 10) ------------

ERYI = "W80"  # a 二级乙等 hospital: below Wuhan's 二级甲等


async def _register_erya(db: Database) -> None:
    async with db.session() as session:
        if await session.get(Hospital, ERYI) is None:
            session.add(
                Hospital(
                    code=ERYI,
                    name="武汉市某二级乙等医院",
                    level=2,
                    grade=HospitalGrade.B,
                    public=True,
                    region="wuhan",
                )
            )


async def _applications(db: Database) -> int:
    async with db.session() as session:
        return await session.scalar(sa.select(sa.func.count()).select_from(Application)) or 0


async def test_wuhan_form_fields_are_recorded_on_the_row_and_stay_out_of_the_process(
    world: World,
) -> None:
    person = await _wuhan_world(world)
    form = support.form(
        person,
        "DM",
        region="wuhan",
        diagnosing_hospital=ERJIA,
        designated_hospital=ERJIA,
        materials=[support.material(hospital=ERJIA)],
        diagnosis_setting="inpatient",
        inpatient_number="ZY20261009017",
        designated_pharmacy="WP02",
    )
    handle = await world.start(application=form, policy=WUHAN)
    async with world.db.session() as session:
        row = await session.get(Application, handle.id)
    assert row is not None
    assert (row.address, row.insured_district) == ("武汉市江汉区解放大道634号", "江汉区")
    assert (row.diagnosis_setting, row.inpatient_number) == ("inpatient", "ZY20261009017")
    assert row.community_health_centre_code == support.COMMUNITY_HEALTH_CENTRE
    assert row.designated_pharmacy_code == "WP02"
    assert row.submitted_by == "applicant" and row.proxy_name is None
    # The workflow needs none of it: its input carries codes and an HMAC, no personal data.
    started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
    [request] = await world.env.client.data_converter.decode(
        started.input.payloads, [ApplicationInput]
    )
    carried = request.model_dump_json()
    for personal in ("解放大道", "ZY20261009017", person):
        assert personal not in carried


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"designated_pharmacy": "WP99"},
            "designated_pharmacy: no pharmacy with code WP99 in the pharmacy register; check the "
            "code on the office's list of designated pharmacies",
        ),
        (
            {"designated_pharmacy": "JLP01"},
            "designated_pharmacy: JLP01 (长春市朝阳区益康大药房) is a designated pharmacy of "
            "jilin, not of wuhan",
        ),
        (
            {"community_health_centre": "W98"},
            "community_health_centre: no hospital with code W98 in the register",
        ),
    ],
)
async def test_a_pharmacy_or_centre_not_in_the_register_is_refused_and_nothing_recorded(
    world: World, fields: dict[str, Any], expected: str
) -> None:
    person = await _wuhan_world(world)
    before = await _applications(world.db)
    with pytest.raises(SubmissionRefused) as refused:
        await world.start(application=wuhan_form(person, "DM", ERJIA, **fields), policy=WUHAN)
    assert any(p.startswith(expected) for p in refused.value.problems), refused.value.problems
    assert await _applications(world.db) == before


async def test_jilin_proxy_with_both_valid_id_numbers_is_recorded_and_audited(
    world: World,
) -> None:
    person = await _jilin_world(world)
    proxy = {"name": "赵明", "id_number": "220104198806072141", "mobile": "13943105678"}
    handle = await world.start(application=_jilin_form(person, proxy=proxy), policy=JILIN)
    async with world.db.session() as session:
        row = await session.get(Application, handle.id)
        events = list(
            await session.scalars(
                sa.select(AuditEvent).where(
                    col(AuditEvent.application_id) == handle.id,
                    col(AuditEvent.action) == PROXY_ACTION,
                )
            )
        )
    assert row is not None and row.submitted_by == "proxy"
    assert (row.proxy_name, row.proxy_id_number, row.proxy_mobile) == (
        "赵明",
        "220104198806072141",
        "+8613943105678",
    )
    assert row.designated_pharmacy_code == "JLP01"
    [event] = events
    assert event.actor == "proxy"
    # Who submitted for whom, masked: the clear values are the row's.
    assert event.detail["proxy"] == {
        "name": "赵*",
        "id_number": "2201**********2141",
        "mobile": "+86139****5678",
    }
    assert event.detail["applicant"]["id_number"] == f"{person[:4]}**********{person[-4:]}"
    progress = await _waiting(handle, ReviewStage.HOSPITAL_ASSESSMENT)
    assert progress.track == "local"


# ---- material age and hospital grade, per region and track --------------------------------------


@pytest.mark.parametrize(
    ("region", "level", "grade", "age_days", "expected"),
    [
        ("wuhan", 2, "A", 700, None),  # 二级甲等, within two years
        ("wuhan", 3, "B", 30, None),  # 三级乙等 is above 二级甲等
        ("wuhan", 2, "B", 30, "二级乙等"),
        ("wuhan", 1, "A", 30, "level 2 grade A (二级甲等) or above"),
        ("wuhan", 2, "A", 731, "more than 730 days ago"),
        ("jilin", 2, "C", 300, None),  # 二级及以上: any grade
        ("jilin", 1, "A", 30, "level 2 or above"),
        ("jilin", 3, "A", 366, "more than 365 days ago"),
        ("sanmenxia", 2, "B", 30, None),
    ],
)
def test_material_rules_of_each_region(
    region: str, level: int, grade: str, age_days: int, expected: str | None
) -> None:
    today = date(2026, 11, 23)
    problems = load_policy(region).material_problems(
        "material 1",
        issued_on=today - timedelta(days=age_days),
        level=level,
        grade=grade,
        public=True,
        today=today,
    )
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and expected in problems[0]


@pytest.mark.parametrize(
    ("disease", "diagnosing", "track"), [("CA", TONGJI, "a"), ("DM", ERJIA, "b")]
)
async def test_wuhan_intake_returns_materials_below_grade_2a_on_either_track(
    world: World, disease: str, diagnosing: str, track: str
) -> None:
    person = await _wuhan_world(world)
    await _register_erya(world.db)
    form = wuhan_form(
        person,
        disease,
        diagnosing,
        materials=[support.material(hospital=diagnosing), support.material(hospital=ERYI)],
    )
    handle = await world.start(application=form, policy=WUHAN)
    progress = await support.eventually(handle, support.waits_for_resubmission)
    assert progress.track == track and progress.status == ApplicationStatus.RETURNED
    [reason] = progress.reasons
    assert "level 2 grade B (二级乙等)" in reason and "二级甲等" in reason
    # At the door, the resubmission is held to the same grade; a 二甲 hospital's is taken.
    await _refused(
        handle.execute_update(
            ApplicationWorkflow.resubmit,
            Resubmission(materials=support.items(support.material(hospital=ERYI))),
        ),
        "二级乙等",
    )
    await handle.execute_update(
        ApplicationWorkflow.resubmit,
        Resubmission(materials=support.items(support.material(hospital=ERJIA))),
    )
    await _waiting(handle, ReviewStage.OFFICE_ACCEPTANCE)


@pytest.mark.parametrize(("out_of_area", "track"), [(False, "local"), (True, "out_of_area")])
async def test_jilin_intake_returns_materials_older_than_a_year_on_either_track(
    world: World, out_of_area: bool, track: str
) -> None:
    person = await _jilin_world(world, long_term_filing=out_of_area)
    stale = date.today() - timedelta(days=400)
    form = _jilin_form(
        person,
        out_of_area=out_of_area,
        materials=[support.material(hospital="JL90", issued_on=stale)],
    )
    handle = await world.start(application=form, policy=JILIN)
    progress = await support.eventually(handle, support.waits_for_resubmission)
    assert progress.track == track and progress.status == ApplicationStatus.RETURNED
    [reason] = progress.reasons
    assert "more than 365 days ago" in reason
    await handle.execute_update(
        ApplicationWorkflow.resubmit,
        Resubmission(materials=support.items(support.material(hospital="JL90"))),
    )
    await _waiting(handle, ReviewStage.HOSPITAL_ASSESSMENT)

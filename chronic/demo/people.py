"""The simulated people around an application: who answers what next.

They read the application's ``progress`` query and act through the same Temporal Updates (and
so the same validators) as the CLI: experts accept, decline, decide or ask for materials
(``chronic expert …``), the office's clerk accepts, returns, confirms or refuses and resubmits
corrected materials (``chronic office …``, as ``clerk:<operator>``), the assessing hospital
schedules an on-site examination or gives its opinion (``chronic hospital …``). What comes next
is read from the application's stage and the step of its track the policy describes (who the
office designates, whether the hospital may examine on site), never from the region's name.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Any

from temporalio.client import WorkflowHandle

from chronic.demo.plan import PlannedApplication, Scenario
from models.domain import (
    ApplicationStatus,
    OfferStatus,
    ReviewStage,
)
from models.messages import (
    AcceptOffer,
    Decide,
    DeclineOffer,
    HospitalOpinion,
    OfficeAccept,
    OfficeConfirm,
    OfficeReturn,
    Progress,
    RequestMaterials,
    Resubmission,
    ScheduleExamination,
)
from models.process import HospitalAssessment, OfficeAcceptance, StepKind, Track
from workflows.application import ApplicationWorkflow

Handle = WorkflowHandle[ApplicationWorkflow, Progress]

# ---- the simulated people -----------------------------------------------------------------------

_DECLINE_REASONS = (
    "本周门诊排班已满，无法在时限内完成审核",
    "外出参加学术会议，暂不能受理",
    "与申请人所在科室存在工作关联，申请回避",
    "近期承担院内质控任务，无法受理",
)
_REJECT_OPINIONS = (
    "诊断依据不足：未见并发症相关检查报告，不符合认定标准",
    "现有病历显示病情稳定，未达到门诊慢特病认定标准",
    "检查结果与申报病种不符，建议补充专科诊断后重新申报",
)
_APPROVE_OPINIONS = (
    "诊断明确，材料齐全，符合认定标准",
    "病史及检查结果支持诊断，同意认定",
    "符合门诊慢特病认定标准",
)
_MATERIALS_NOTES = (
    "请补充近三个月内的专科检查报告",
    "请补充出院小结及相关化验单",
)


@dataclass
class Tracked:
    """One application of the batch as the demo follows it."""

    plan: PlannedApplication
    application_id: str | None = None
    progress: Progress | None = None
    error: str | None = None
    last_action: str = "submitting"
    refused_actions: int = 0
    """Actions a workflow validator refused (races with a lapse); the demo carries on."""
    lapsed_on_purpose: set[int] = field(default_factory=set)
    declined: bool = False
    materials_asked: bool = False
    resubmitted_rounds: set[int] = field(default_factory=set)
    office_returned: bool = False
    examined: bool = False
    filing_id: str | None = None
    """The out-of-area filing filed before applying (remote applicants)."""

    @property
    def finished(self) -> bool:
        if self.error is not None:
            return True
        return self.progress is not None and self.progress.finished_at is not None

    @property
    def status(self) -> str:
        if self.error is not None and self.progress is None:
            return "not submitted"
        return str(self.progress.status) if self.progress else "submitted"


Action = Callable[[Handle], Awaitable[Any]]

_OFFICE_RETURN_REASONS = (
    "诊断证明与申报病种不符，请核对后重新提交",
    "出院小结缺少医院盖章，请补盖章后重新提交",
)
_OFFICE_REFUSAL_REASONS = (
    "鉴定意见与病历资料不一致，经审核不予认定",
    "现有资料不足以支持认定，不予登记",
)
_BEIJING = timezone(timedelta(hours=8))
_EXAMINATION_PLACES = ("门诊楼三楼鉴定室", "医保办公室旁医学鉴定中心", "门诊二楼慢病鉴定窗口")


def next_action(
    tracked: Tracked,
    progress: Progress,
    rng: random.Random,
    *,
    track: Track | None = None,
    clerk: str = "clerk:demo",
    zone: timezone = _BEIJING,
) -> tuple[str, Action] | None:
    """What the scenario's people do next on ``progress``; None = nothing now (wait).

    Args:
        track: the application's track in the demo's policy (its steps say who the office
            designates and whether the hospital may examine on site).
        clerk: the office's clerk, as the audit trail records them.
        zone: the region's time zone (an examination is set for 9 o'clock there).
    """
    if (
        progress.status in (ApplicationStatus.RETURNED, ApplicationStatus.MATERIALS_REQUESTED)
        and progress.resubmission_deadline is not None
        and progress.materials_round not in tracked.resubmitted_rounds
    ):
        tracked.resubmitted_rounds.add(progress.materials_round)
        resubmission = Resubmission(materials=tracked.plan.good_materials)
        return "clerk resubmits materials", lambda h: h.execute_update(
            ApplicationWorkflow.resubmit, resubmission
        )
    if progress.status != ApplicationStatus.IN_REVIEW:
        return None
    if track is not None:
        step = _office_or_hospital(tracked, progress, rng, track, clerk, zone)
        if step is not None:
            return step
    return _expert(tracked, progress, rng)


def _office_or_hospital(
    tracked: Tracked,
    progress: Progress,
    rng: random.Random,
    track: Track,
    clerk: str,
    zone: timezone,
) -> tuple[str, Action] | None:
    """The office's and the assessing hospital's turn, by the stage the application is in."""
    scenario = tracked.plan.scenario
    decided = {d.stage for d in progress.decisions}
    office = track.step(StepKind.OFFICE_ACCEPTANCE)
    assessment = track.step(StepKind.HOSPITAL_ASSESSMENT)
    if progress.stage == ReviewStage.OFFICE_ACCEPTANCE and isinstance(office, OfficeAcceptance):
        if scenario is Scenario.OFFICE_RETURN and not tracked.office_returned:
            back = OfficeReturn(clerk=clerk, reasons=rng.choice(_OFFICE_RETURN_REASONS))

            async def office_return(h: Handle) -> Any:
                await h.execute_update(ApplicationWorkflow.office_return, back)
                tracked.office_returned = True

            return f"{clerk} returns it", office_return
        named = None if office.designates == "diagnosing_hospital" else tracked.plan.assessor
        accept = OfficeAccept(clerk=clerk, hospital=named)
        who = named or "the diagnosing hospital"
        return f"{clerk} accepts: {who} assesses", lambda h: h.execute_update(
            ApplicationWorkflow.office_accept, accept
        )
    if (
        progress.stage == ReviewStage.HOSPITAL_ASSESSMENT
        and isinstance(assessment, HospitalAssessment)
        and ReviewStage.HOSPITAL_ASSESSMENT not in decided
    ):
        hospital = (
            progress.assessment_hospital
            or tracked.plan.assessor
            or tracked.plan.form.diagnosing_hospital
        )
        if (
            scenario is Scenario.EXAMINATION
            and assessment.on_site_examination
            and progress.examination is None
            and not tracked.examined
        ):
            day = (datetime.now(zone) + timedelta(days=2)).date()
            at = datetime.combine(day, time(9, rng.choice((0, 30))), zone)
            exam = ScheduleExamination(
                hospital=hospital, at=at, place=rng.choice(_EXAMINATION_PLACES)
            )

            async def examine(h: Handle) -> Any:
                await h.execute_update(ApplicationWorkflow.schedule_examination, exam)
                tracked.examined = True

            return f"hospital:{hospital} schedules an on-site examination", examine
        approve = scenario is not Scenario.REJECT
        opinion = HospitalOpinion(
            hospital=hospital,
            approve=approve,
            opinion=rng.choice(_APPROVE_OPINIONS if approve else _REJECT_OPINIONS),
        )
        verb = "approves" if approve else "rejects"
        return f"hospital:{hospital} {verb}", lambda h: h.execute_update(
            ApplicationWorkflow.hospital_opinion, opinion
        )
    if (
        progress.stage == ReviewStage.OFFICE_CONFIRMATION
        and track.step(StepKind.OFFICE_CONFIRMATION) is not None
        and ReviewStage.HOSPITAL_ASSESSMENT in decided
        and ReviewStage.OFFICE_CONFIRMATION not in decided
    ):
        refuse = scenario is Scenario.OFFICE_REFUSES
        confirm = OfficeConfirm(
            clerk=clerk,
            confirm=not refuse,
            reason=rng.choice(_OFFICE_REFUSAL_REASONS) if refuse else "",
        )
        verb = "refuses" if refuse else "confirms"
        return f"{clerk} {verb}", lambda h: h.execute_update(
            ApplicationWorkflow.office_confirm, confirm
        )
    return None


def _expert(tracked: Tracked, progress: Progress, rng: random.Random) -> tuple[str, Action] | None:
    """The expert holding the current offer: accept, decline, let it lapse, decide."""
    scenario = tracked.plan.scenario
    offer = progress.current_offer
    if offer is None:
        return None
    expert = offer.expert
    if offer.status == OfferStatus.PENDING:
        if offer.seq in tracked.lapsed_on_purpose:
            return None
        if scenario is Scenario.LAPSE and not tracked.lapsed_on_purpose:
            tracked.lapsed_on_purpose.add(offer.seq)
            tracked.last_action = f"{expert} lets the offer lapse"
            return None
        if scenario is Scenario.DECLINE and not tracked.declined:
            tracked.declined = True
            decline = DeclineOffer(expert=expert, reason=rng.choice(_DECLINE_REASONS))
            return f"{expert} declines", lambda h: h.execute_update(
                ApplicationWorkflow.decline, decline
            )
        accept = AcceptOffer(expert=expert)
        return f"{expert} accepts", lambda h: h.execute_update(ApplicationWorkflow.accept, accept)
    if offer.status != OfferStatus.ACCEPTED:
        return None
    if scenario is Scenario.MATERIALS and not tracked.materials_asked:
        tracked.materials_asked = True
        request = RequestMaterials(expert=expert, note=rng.choice(_MATERIALS_NOTES))
        return f"{expert} requests materials", lambda h: h.execute_update(
            ApplicationWorkflow.request_materials, request
        )
    approve = _approves(scenario, offer.stage)
    opinion = rng.choice(_APPROVE_OPINIONS if approve else _REJECT_OPINIONS)
    decide = Decide(expert=expert, approve=approve, opinion=opinion)
    verb = "approves" if approve else "rejects"
    return f"{expert} {verb} ({offer.stage})", lambda h: h.execute_update(
        ApplicationWorkflow.decide, decide
    )


def _approves(scenario: Scenario, stage: ReviewStage) -> bool:
    if scenario is Scenario.REJECT:
        return False
    if scenario is Scenario.ARBITRATION:
        return stage != ReviewStage.RE_REVIEW  # re-review dissents; the third expert approves
    return True


def who_acts(progress: Progress | None) -> str:
    """Whose turn it is, for the live view: an expert's offer, the office, a hospital."""
    if progress is None or progress.finished_at is not None:
        return "-"
    offer = progress.current_offer
    if offer is not None:
        return f"{offer.expert} ({offer.status})"
    if progress.stage in (ReviewStage.OFFICE_ACCEPTANCE, ReviewStage.OFFICE_CONFIRMATION):
        return "office"
    if progress.stage == ReviewStage.HOSPITAL_ASSESSMENT:
        return f"hospital {progress.assessment_hospital or '(the applicant chooses)'}"
    return "-"

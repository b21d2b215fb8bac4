"""The simulated people around an application: who answers what next."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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
    Progress,
    RequestMaterials,
    Resubmission,
)
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


def next_action(
    tracked: Tracked, progress: Progress, rng: random.Random
) -> tuple[str, Action] | None:
    """What the scenario's people do next on ``progress``; None = nothing now (wait)."""
    scenario = tracked.plan.scenario
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
    offer = progress.current_offer
    if offer is None or progress.status != ApplicationStatus.IN_REVIEW:
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

"""The office's pages and API (clerks and operators): where the applications stand.

- ``/office``: counts by status and stage and the SLA of each region (the same counts as
  ``chronic report overview``, from :mod:`chronic.reports.overview`), and the applications
  behind them with their working days against the policy's limit, filtered by status, stage
  or overdue;
- ``/office/stuck``: open applications past their limit, without a running process, or
  waiting for an expert the pool does not have;
- ``/office/experts``: the expert pool (status, strikes, disqualification) and, for
  operators, reinstatement with a reason (:func:`chronic.pool.reinstate`, the CLI's path,
  recorded as the signed-in person).

Each list links into the Temporal Web UI (``CHRONIC_TEMPORAL_UI_URL``) with the visibility
query of the product's search attributes, so the office lands on the same set of processes.
The JSON API under ``/api/office`` serves the same data. Office staff may see applicants'
names here; ID numbers and mobiles are never shown.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from chronic.hall import cases
from chronic.hall.app import Csrf, Hall, HallDep, csrf_token, require, templates
from chronic.hall.sessions import Visitor
from chronic.pool import POOL_EXHAUSTED_QUERY, PoolRefused, reinstate, signal_waiting
from chronic.reports.overview import (
    ClockedApplication,
    RegionOverview,
    applications_with_clock,
    overview,
)
from chronic.settings import Settings
from chronic.workdays import default_calendar
from models import search_attributes as sa
from models.domain import ApplicationStatus, ExpertStatus, ReviewStage
from models.policy import PolicyProfile, available_regions, load_policy
from models.tables import Expert, Hospital
from models.text import problem as text_problem

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/office", tags=["office"])

OfficeVisitor = Annotated[Visitor, Depends(require("clerk", "operator"))]
OperatorVisitor = Annotated[Visitor, Depends(require("operator"))]

WORKFLOW_TYPE = "ApplicationWorkflow"
RUNNING = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
EXPERT_STATUS_LABELS = {
    ExpertStatus.ACTIVE: "在库",
    ExpertStatus.DISQUALIFIED: "已取消资格",
    ExpertStatus.INACTIVE: "暂停",
}


@functools.lru_cache(maxsize=4)
def _policies(settings_dir: str | None) -> dict[str, PolicyProfile]:
    from pathlib import Path

    folder = Path(settings_dir) if settings_dir else None
    return {region: load_policy(region, folder) for region in available_regions(folder)}


def policies(settings: Settings) -> dict[str, PolicyProfile]:
    """Every region's profile (parsed once per process and policy folder)."""
    return _policies(str(settings.policy_dir) if settings.policy_dir else None)


# ---- links into the Temporal UI ---------------------------------------------------------------


@dataclass(frozen=True)
class TemporalUi:
    """Addresses in the Temporal Web UI: one process, or the list a visibility query filters."""

    base: str
    namespace: str

    @classmethod
    def of(cls, settings: Settings) -> TemporalUi:
        from chronic.temporal_client import connect_options

        options = connect_options(settings)
        base = settings.temporal_ui_url
        if not base:
            host = str(options.get("target_host", "")).rpartition(":")[0] or "localhost"
            if host in ("127.0.0.1", "0.0.0.0", "[::1]"):
                host = "localhost"
            base = f"http://{host}:{settings.temporal_ui_port}"
        return cls(base.rstrip("/"), str(options.get("namespace", "default")))

    def workflow(self, workflow_id: str) -> str:
        return f"{self.base}/namespaces/{self.namespace}/workflows/{quote(workflow_id, safe='')}"

    def query(self, query: str) -> str:
        return f"{self.base}/namespaces/{self.namespace}/workflows?query={quote(query, safe='')}"


def status_query(status: str) -> str:
    return f"WorkflowType = '{WORKFLOW_TYPE}' AND {sa.APPLICATION_STATUS.name} = '{status}'"


def stage_query(stage: str) -> str:
    return f"{RUNNING} AND {sa.REVIEW_STAGE.name} = '{stage}'"


def region_query(region: str) -> str:
    return f"WorkflowType = '{WORKFLOW_TYPE}' AND {sa.REGION.name} = '{region}'"


BREACHED_QUERY = f"{RUNNING} AND {sa.SLA_BREACHED.name} = true"


# ---- read models ------------------------------------------------------------------------------


async def regions_overview(hall: Hall) -> list[RegionOverview]:
    async with hall.db.session() as session:
        return await overview(session, policies(hall.settings), calendar=default_calendar())


async def application_list(
    hall: Hall,
    *,
    status: str | None = None,
    stage: str | None = None,
    overdue: bool = False,
    open_only: bool = False,
) -> list[ClockedApplication]:
    async with hall.db.session() as session:
        found = await applications_with_clock(
            session,
            policies(hall.settings),
            calendar=default_calendar(),
            status=status,
            stage=stage,
            open_only=open_only or overdue,
            limit=500,
        )
    return [a for a in found if a.overdue] if overdue else found


@dataclass(frozen=True)
class StuckCase:
    application: ClockedApplication
    why: str


async def _ids(client: Client, query: str) -> set[str]:
    return {execution.id async for execution in client.list_workflows(query)}


async def _without_process(client: Client, candidates: list[str]) -> list[str]:
    """Those of ``candidates`` whose workflow is not running (visibility lags, so each is
    confirmed by describing it)."""
    missing = []
    for application_id in candidates:
        try:
            description = await client.get_workflow_handle(application_id).describe()
        except RPCError:
            missing.append(application_id)
            continue
        if description.status != WorkflowExecutionStatus.RUNNING:
            missing.append(application_id)
    return missing


async def stuck_cases(hall: Hall) -> tuple[list[StuckCase], bool]:
    """Open applications past their limit, without a running process, or waiting for an
    expert; and whether Temporal answered (without it, only the overdue are known)."""
    open_ones = await application_list(hall, open_only=True)
    by_id = {a.application_id: a for a in open_ones}
    why: dict[str, list[str]] = {a.application_id: [] for a in open_ones}
    for a in open_ones:
        if a.overdue:
            why[a.application_id].append(
                f"超过办理时限（已用 {a.working_days} 个工作日，时限 {a.target}）"
            )
    client = await hall.temporal_or_none()
    answered = client is not None
    if client is not None:
        try:
            running = await _ids(client, RUNNING)
            settled = datetime.now(UTC) - timedelta(seconds=hall.settings.reconcile_min_age_seconds)
            candidates = [
                a.application_id
                for a in open_ones
                if a.application_id not in running and a.submitted_at <= settled
            ]
            for application_id in await _without_process(client, candidates):
                why[application_id].append("没有运行中的办理流程（对账程序将补启动，或流程已失败）")
            for application_id in await _ids(client, POOL_EXHAUSTED_QUERY) & set(by_id):
                why[application_id].append("专家库中已无可抽取的专家，需增补或恢复专家")
        except RPCError:
            answered = False
    found = [StuckCase(by_id[i], "；".join(w)) for i, w in why.items() if w]
    return found, answered


@dataclass(frozen=True)
class PoolExpert:
    code: str
    name: str
    hospital: str
    region: str
    title: str
    status: str
    strikes: int
    disqualified_at: datetime | None

    @property
    def status_label(self) -> str:
        return EXPERT_STATUS_LABELS.get(ExpertStatus(self.status), self.status)


async def expert_pool(hall: Hall) -> list[PoolExpert]:
    async with hall.db.session() as session:
        rows = (
            await session.exec(
                select(Expert, Hospital)
                .join(Hospital, col(Hospital.code) == col(Expert.hospital_code))
                .order_by(col(Expert.region), col(Expert.code))
            )
        ).all()
    return [
        PoolExpert(
            e.code,
            e.name,
            f"{h.name}（{h.code}）",
            e.region,
            str(e.title),
            str(e.status),
            e.consecutive_strikes,
            e.disqualified_at,
        )
        for e, h in rows
    ]


def reason_problem(reason: str) -> str | None:
    """Why ``reason`` cannot go into the audit trail (the CLI's ``--reason`` rule), or None."""
    found = text_problem(reason, field="reason", max_length=500)
    if found is not None:
        return found
    return None if reason.strip() else "请填写原因（记入审计记录）。"


async def reinstate_expert(hall: Hall, who: Visitor, code: str, reason: str) -> str:
    """Reinstate ``code`` as the signed-in operator; returns what to tell them.

    Raises:
        PoolRefused: no such expert, active already, or the reason cannot be recorded.
    """
    problem = reason_problem(reason)
    if problem is not None:
        raise PoolRefused(problem)
    async with hall.db.session() as session:
        done = await reinstate(session, code, reason.strip(), who.actor)
    client = await hall.temporal_or_none()
    signalled = await signal_waiting(client) if client is not None else "办理系统暂未响应"
    return f"已恢复专家 {done.code}（原状态 {done.was}，连续不受理次数清零）。{signalled}"


# ---- pages ------------------------------------------------------------------------------------


def page(
    request: Request, name: str, who: Visitor, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {
            "csrf": csrf_token(request),
            "who": who,
            "ui": TemporalUi.of(request.app.state.hall.settings),
            "status_labels": cases.STATUS_LABELS,
            "stage_labels": cases.STAGE_LABELS,
            "status_query": status_query,
            "stage_query": stage_query,
            "region_query": region_query,
            **context,
        },
        status_code=status_code,
    )


StatusFilter = Annotated[ApplicationStatus | None, Query(description="Only this status.")]
StageFilter = Annotated[ReviewStage | None, Query(description="Only this stage.")]
OverdueFilter = Annotated[
    bool, Query(description="Only open applications beyond the policy's working-day limit.")
]
ExpertCode = Annotated[
    str,
    FastApiPath(
        pattern=r"^[A-Za-z0-9_-]{1,16}$", max_length=16, description="Staff code, e.g. E042."
    ),
]


@pages.get("/office")
async def office_home(
    request: Request,
    hall: HallDep,
    who: OfficeVisitor,
    status: StatusFilter = None,
    stage: StageFilter = None,
    overdue: OverdueFilter = False,
) -> HTMLResponse:
    regions = await regions_overview(hall)
    listed = await application_list(
        hall,
        status=status.value if status else None,
        stage=stage.value if stage else None,
        overdue=overdue,
        open_only=status is None,
    )
    return page(
        request,
        "office_home.html",
        who,
        regions=regions,
        applications=listed,
        status=status.value if status else "",
        stage=stage.value if stage else "",
        overdue=overdue,
        breached_query=BREACHED_QUERY,
        statuses=list(ApplicationStatus),
        stages=list(ReviewStage),
    )


@pages.get("/office/stuck")
async def office_stuck(request: Request, hall: HallDep, who: OfficeVisitor) -> HTMLResponse:
    found, answered = await stuck_cases(hall)
    return page(
        request,
        "office_stuck.html",
        who,
        stuck=found,
        answered=answered,
        pool_query=POOL_EXHAUSTED_QUERY,
        breached_query=BREACHED_QUERY,
    )


@pages.get("/office/experts")
async def office_experts(request: Request, hall: HallDep, who: OfficeVisitor) -> HTMLResponse:
    return page(request, "office_experts.html", who, experts=await expert_pool(hall))


@pages.post("/office/experts/{code}/reinstate", dependencies=[Csrf])
async def office_reinstate(
    request: Request,
    hall: HallDep,
    who: OperatorVisitor,
    code: ExpertCode,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> HTMLResponse:
    try:
        said = await reinstate_expert(hall, who, code, reason)
    except PoolRefused as refused:
        return page(
            request,
            "office_done.html",
            who,
            refused=str(refused),
            back="/office/experts",
            status_code=409,
        )
    return page(request, "office_done.html", who, said=said, back="/office/experts")


# ---- JSON API ---------------------------------------------------------------------------------


class RegionCounts(BaseModel):
    region: str
    sla_working_days_max: int
    by_status: dict[str, int]
    open_by_stage: dict[str, int]
    decided_late: int
    open_overdue: int
    sla_breaches: int
    median_working_days: float | None
    temporal_ui: str = Field(description="The region's processes in the Temporal Web UI.")


class ApplicationRow(BaseModel):
    application_id: str
    region: str
    status: str
    stage: str
    submitted_at: datetime
    closed_at: datetime | None
    working_days: int
    sla_working_days_max: int
    overdue: bool
    applicant: str = Field(description="The applicant's name (office staff only).")
    submitted_by: str
    submitting_hospital: str | None
    temporal_ui: str


class StuckRow(ApplicationRow):
    why: str


class StuckList(BaseModel):
    temporal_answered: bool
    applications: list[StuckRow]


class ExpertRow(BaseModel):
    code: str
    name: str
    hospital: str
    region: str
    title: str
    status: str
    consecutive_strikes: int
    disqualified_at: datetime | None


class Reason(BaseModel):
    reason: str = Field(max_length=500, description="Why (recorded in the audit trail).")


class Done(BaseModel):
    message: str


def _row(a: ClockedApplication, ui: TemporalUi) -> dict[str, Any]:
    return {
        "application_id": a.application_id,
        "region": a.region,
        "status": a.status,
        "stage": a.stage,
        "submitted_at": a.submitted_at,
        "closed_at": a.closed_at,
        "working_days": a.working_days,
        "sla_working_days_max": a.target,
        "overdue": a.overdue,
        "applicant": a.applicant,
        "submitted_by": a.submitted_by,
        "submitting_hospital": a.submitting_hospital,
        "temporal_ui": ui.workflow(a.application_id),
    }


@api.get("/overview")
async def api_overview(hall: HallDep, who: OfficeVisitor) -> list[RegionCounts]:
    """Counts by region: statuses, open applications by stage, SLA (as `chronic report
    overview`)."""
    ui = TemporalUi.of(hall.settings)
    return [
        RegionCounts(
            region=r.region,
            sla_working_days_max=r.sla_working_days_max,
            by_status=dict(r.by_status),
            open_by_stage=dict(r.open_by_stage),
            decided_late=r.decided_late,
            open_overdue=r.open_overdue,
            sla_breaches=r.sla_breaches,
            median_working_days=r.median_working_days,
            temporal_ui=ui.query(region_query(r.region)),
        )
        for r in await regions_overview(hall)
    ]


@api.get("/applications")
async def api_applications(
    hall: HallDep,
    who: OfficeVisitor,
    status: StatusFilter = None,
    stage: StageFilter = None,
    overdue: OverdueFilter = False,
) -> list[ApplicationRow]:
    """Applications (open ones unless a status is asked for), oldest first, with their
    working days against the policy's limit."""
    ui = TemporalUi.of(hall.settings)
    listed = await application_list(
        hall,
        status=status.value if status else None,
        stage=stage.value if stage else None,
        overdue=overdue,
        open_only=status is None,
    )
    return [ApplicationRow(**_row(a, ui)) for a in listed]


@api.get("/stuck")
async def api_stuck(hall: HallDep, who: OfficeVisitor) -> StuckList:
    """Open applications past their limit, without a running process, or without an expert."""
    ui = TemporalUi.of(hall.settings)
    found, answered = await stuck_cases(hall)
    return StuckList(
        temporal_answered=answered,
        applications=[StuckRow(**_row(s.application, ui), why=s.why) for s in found],
    )


@api.get("/experts")
async def api_experts(hall: HallDep, who: OfficeVisitor) -> list[ExpertRow]:
    """The expert pool: status, consecutive strikes, disqualification."""
    return [
        ExpertRow(
            code=e.code,
            name=e.name,
            hospital=e.hospital,
            region=e.region,
            title=e.title,
            status=e.status,
            consecutive_strikes=e.strikes,
            disqualified_at=e.disqualified_at,
        )
        for e in await expert_pool(hall)
    ]


@api.post("/experts/{code}/reinstate", dependencies=[Csrf])
async def api_reinstate(
    code: ExpertCode, body: Reason, hall: HallDep, who: OperatorVisitor
) -> Done:
    """Reinstate a disqualified or inactive expert (operators; 409 with the reason when
    refused). Recorded in the audit trail as the signed-in operator."""
    try:
        return Done(message=await reinstate_expert(hall, who, code, body.reason))
    except PoolRefused as refused:
        raise HTTPException(409, str(refused)) from None

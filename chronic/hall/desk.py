"""A hospital desk's pages and API (role ``hospital``, bound to one hospital of the register).

The desk sees the applications its hospital submitted (``application.submitting_hospital_code``,
辅助申报) and, in the regions where hospitals assess (Wuhan, Jilin), those its hospital may
assess now: the workflow names it as the assessment hospital, or none is named yet and it is
one of the region's designated assessment hospitals. Any other application is answered as
missing (404), whatever the desk asks.

It submits for an applicant (辅助申报, ``/desk/apply``, ``POST /api/desk/applications``): the
applicant's own form and code path (:func:`chronic.hall.applying.apply`), the applicant named
by ID number and looked up in the register, only within the desk's region; the scans are
uploaded by the desk into the same document store, with the same checks.

It schedules on-site examinations and gives the assessment's opinion through the same Updates
as ``chronic hospital examine|opinion``, with its account's hospital code: the workflow's
validator refuses out-of-turn or foreign actions in the same words as on the CLI, before
anything reaches history. Every action is in the audit trail as the signed-in person.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select

from chronic.actor import record_as
from chronic.cli.output import CommandFailed, local, progress_of, send_update
from chronic.hall import applying, cases
from chronic.hall import pages as applicant_pages
from chronic.hall.api import ApplicationIn, Submitted, apply_form
from chronic.hall.app import ApplicationId, Csrf, Hall, HallDep, csrf_token, require, templates
from chronic.hall.office import policies
from chronic.hall.sessions import Visitor
from models.domain import ApplicationStatus, ReviewStage
from models.messages import HospitalOpinion, Progress, ScheduleExamination
from models.tables import Application, Hospital, InsuredPerson
from workflows.application import ApplicationWorkflow

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/desk", tags=["hospital desk"])

DeskVisitor = Annotated[Visitor, Depends(require("hospital"))]


@dataclass(frozen=True)
class DeskCase:
    """An application as the desk sees it (the applicant's name, never ID number or mobile)."""

    application_id: str
    region: str
    disease: str
    applicant: str
    status: str
    stage: str
    submitted: str
    submitted_here: bool
    assessable: bool = False
    steps: list[cases.Step] | None = None
    examination: str = ""
    result: str = ""
    reasons: list[str] | None = None


def _hospital(visitor: Visitor) -> str:
    if visitor.hospital_code is None:
        raise cases.NotYours("no hospital")
    return visitor.hospital_code


def may_assess(hall: Hall, progress: Progress, hospital: str) -> bool:
    """The workflow waits for an assessment this hospital may give."""
    if progress.finished_at is not None or progress.stage != ReviewStage.HOSPITAL_ASSESSMENT:
        return False
    if progress.assessment_hospital is not None:
        return progress.assessment_hospital == hospital
    policy = policies(hall.settings).get(progress.region)
    return policy is not None and hospital in policy.assessment_hospitals


async def _progress(hall: Hall, application_id: str) -> Progress | None:
    client = await hall.temporal_or_none()
    if client is None:
        return None
    with contextlib.suppress(CommandFailed, RuntimeError):
        return await progress_of(client, application_id)
    return None


def _case(row: Application, name: str, hospital: str, assessable: bool) -> DeskCase:
    zone = cases.zone_of(row.region)
    return DeskCase(
        row.id,
        row.region,
        cases.disease_name(row.region, row.disease_code),
        name,
        cases.STATUS_LABELS.get(row.status, str(row.status)),
        cases.STAGE_LABELS.get(row.stage, str(row.stage)),
        local(row.submitted_at, zone),
        row.submitting_hospital_code == hospital,
        assessable,
    )


async def desk_cases(hall: Hall, visitor: Visitor) -> tuple[list[DeskCase], list[DeskCase]]:
    """The hospital's submissions (newest first), and the applications it may assess now."""
    hospital = _hospital(visitor)
    async with hall.db.session() as session:
        place = await session.get(Hospital, hospital)
        submitted = (
            await session.exec(
                select(Application, InsuredPerson.name)
                .join(InsuredPerson, col(InsuredPerson.id) == col(Application.person_id))
                .where(col(Application.submitting_hospital_code) == hospital)
                .order_by(col(Application.submitted_at).desc())
                .limit(200)
            )
        ).all()
        waiting = (
            (
                await session.exec(
                    select(Application, InsuredPerson.name)
                    .join(InsuredPerson, col(InsuredPerson.id) == col(Application.person_id))
                    .where(
                        col(Application.region) == place.region,
                        col(Application.stage) == ReviewStage.HOSPITAL_ASSESSMENT,
                        col(Application.closed_at).is_(None),
                    )
                    .order_by(col(Application.submitted_at))
                    .limit(200)
                )
            ).all()
            if place is not None
            else []
        )
    found = await asyncio.gather(*(_progress(hall, row.id) for row, _ in waiting))
    to_assess = [
        _case(row, name, hospital, True)
        for (row, name), progress in zip(waiting, found, strict=True)
        if progress is not None and may_assess(hall, progress, hospital)
    ]
    return [_case(row, name, hospital, False) for row, name in submitted], to_assess


async def desk_case(hall: Hall, visitor: Visitor, application_id: str) -> DeskCase:
    """One application with its timeline (NotYours unless submitted here or assessable)."""
    hospital = _hospital(visitor)
    async with hall.db.session() as session:
        found = (
            await session.exec(
                select(Application, InsuredPerson.name)
                .join(InsuredPerson, col(InsuredPerson.id) == col(Application.person_id))
                .where(col(Application.id) == application_id)
            )
        ).first()
    if found is None:
        raise cases.NotYours(application_id)
    row, name = found
    progress = await _progress(hall, application_id)
    assessable = progress is not None and may_assess(hall, progress, hospital)
    if row.submitting_hospital_code != hospital and not assessable:
        raise cases.NotYours(application_id)
    shown = _case(row, name, hospital, assessable)
    zone = cases.zone_of(row.region)
    if progress is None:
        status = ApplicationStatus(row.status)
        steps = [cases.Step("提交申请", "done", shown.submitted)]
        if status not in cases.FINISHED:
            steps.append(cases.Step(shown.status, "current"))
        reasons = [row.outcome_reason] if row.outcome_reason else []
        return _with(shown, steps=steps, reasons=reasons)
    timeline = cases._from_progress(progress, row, shown.disease, zone)
    exam = progress.examination
    return _with(
        shown,
        status=timeline.status,
        stage=cases.STAGE_LABELS.get(progress.stage, str(progress.stage)),
        steps=timeline.steps,
        result=timeline.result,
        reasons=timeline.reasons,
        examination=f"{local(exam.at, zone)} {exam.place}" if exam else "",
    )


def _with(case: DeskCase, **changes: Any) -> DeskCase:
    return DeskCase(**{**vars(case), **changes})


async def examine(
    hall: Hall, visitor: Visitor, application_id: str, at: datetime, place: str
) -> str:
    """Ask the applicant in for an on-site examination (the CLI's Update); what to tell.

    Raises:
        NotYours: not an application the desk may see.
        CommandFailed: the workflow's validator refused (its words).
    """
    shown = await desk_case(hall, visitor, application_id)
    hospital = _hospital(visitor)
    when = at if at.tzinfo is not None else at.replace(tzinfo=cases.zone_of(shown.region))
    action = ScheduleExamination(hospital=hospital, at=when, place=place.strip())
    progress = await send_update(
        await hall.temporal(),
        application_id,
        lambda h: h.execute_update(ApplicationWorkflow.schedule_examination, action),
    )
    async with hall.db.session() as session:
        await record_as(
            session,
            visitor.actor,
            "hall_examination_scheduled",
            application_id,
            hospital=hospital,
        )
    exam = progress.examination
    said = local(exam.at, cases.zone_of(shown.region)) if exam else ""
    return f"已安排现场鉴定（{said}），将以短信通知申请人。"


async def give_opinion(
    hall: Hall, visitor: Visitor, application_id: str, approve: bool, opinion: str
) -> str:
    """The assessment's opinion (the CLI's Update); what to tell.

    Raises:
        NotYours: not an application the desk may see.
        CommandFailed: the workflow's validator refused (its words).
    """
    await desk_case(hall, visitor, application_id)
    hospital = _hospital(visitor)
    action = HospitalOpinion(hospital=hospital, approve=approve, opinion=opinion.strip())
    await send_update(
        await hall.temporal(),
        application_id,
        lambda h: h.execute_update(ApplicationWorkflow.hospital_opinion, action),
    )
    async with hall.db.session() as session:
        await record_as(
            session,
            visitor.actor,
            "hall_hospital_opinion",
            application_id,
            hospital=hospital,
            approve=approve,
        )
    return "已提交鉴定意见：" + ("符合认定标准" if approve else "不符合认定标准")


# ---- pages ------------------------------------------------------------------------------------


def page(
    request: Request, name: str, who: Visitor, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {"csrf": csrf_token(request), "who": who, **context}, status_code=status_code
    )


def _missing(request: Request, who: Visitor) -> HTMLResponse:
    return page(request, "error.html", who, message="没有找到该申请。", status_code=404)


def _done(
    request: Request, who: Visitor, application_id: str, said: str | CommandFailed
) -> HTMLResponse:
    back = f"/desk/applications/{application_id}"
    if isinstance(said, CommandFailed):
        return page(request, "office_done.html", who, refused=str(said), back=back, status_code=409)
    return page(request, "office_done.html", who, said=said, back=back)


@pages.get("/desk")
async def desk_home(request: Request, hall: HallDep, who: DeskVisitor) -> HTMLResponse:
    submitted, to_assess = await desk_cases(hall, who)
    return page(request, "desk_home.html", who, submitted=submitted, to_assess=to_assess)


@pages.get("/desk/apply")
async def desk_apply_form(request: Request, hall: HallDep, who: DeskVisitor) -> HTMLResponse:
    """The region's application form, to submit for an applicant (辅助申报)."""
    draft = applying.Draft(materials=applicant_pages.blank_rows())
    try:
        return await applicant_pages.apply_page(request, hall, who, draft)
    except applying.Refused as refused:
        return page(request, "error.html", who, message=str(refused), status_code=403)


@pages.post("/desk/apply", dependencies=[Csrf])
async def desk_apply(request: Request, hall: HallDep, who: DeskVisitor) -> HTMLResponse:
    """Submit for the applicant named by ID number, with the scans uploaded now or earlier; a
    refused form comes back with everything typed and uploaded kept."""
    form = await request.form()
    materials, refused = await applicant_pages.materials_of(hall, who, form)
    draft = applicant_pages.draft_of(form, materials)
    try:
        application_id, started = await applying.apply(
            hall.db, await hall.temporal_or_none(), hall.settings, who, draft, refused
        )
    except applying.Refused as problems:
        try:
            return await applicant_pages.apply_page(request, hall, who, draft, problems.problems)
        except applying.Refused as unbound:
            return page(request, "error.html", who, message=str(unbound), status_code=403)
    said = f"已代为提交申请（{application_id}），审核结果将以短信通知申请人。" + (
        "" if started else "办理系统暂未响应，申请已登记，将自动开始办理，无需重新提交。"
    )
    return page(
        request, "office_done.html", who, said=said, back=f"/desk/applications/{application_id}"
    )


@pages.get("/desk/applications/{application_id}")
async def desk_application(
    request: Request, hall: HallDep, who: DeskVisitor, application_id: ApplicationId
) -> HTMLResponse:
    try:
        shown = await desk_case(hall, who, application_id)
    except cases.NotYours:
        return _missing(request, who)
    return page(request, "desk_case.html", who, case=shown)


@pages.post("/desk/applications/{application_id}/examination", dependencies=[Csrf])
async def desk_examination(
    request: Request,
    hall: HallDep,
    who: DeskVisitor,
    application_id: ApplicationId,
    at: Annotated[datetime, Form(description="Local time, e.g. 2026-12-08T09:00.")],
    place: Annotated[str, Form(max_length=200)],
) -> HTMLResponse:
    try:
        said: str | CommandFailed = await examine(hall, who, application_id, at, place)
    except cases.NotYours:
        return _missing(request, who)
    except CommandFailed as refused:
        said = refused
    return _done(request, who, application_id, said)


@pages.post("/desk/applications/{application_id}/opinion", dependencies=[Csrf])
async def desk_opinion(
    request: Request,
    hall: HallDep,
    who: DeskVisitor,
    application_id: ApplicationId,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    opinion: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    try:
        said: str | CommandFailed = await give_opinion(
            hall, who, application_id, decision == "approve", opinion
        )
    except cases.NotYours:
        return _missing(request, who)
    except CommandFailed as refused:
        said = refused
    return _done(request, who, application_id, said)


# ---- JSON API ---------------------------------------------------------------------------------


class DeskRow(BaseModel):
    application_id: str
    region: str
    disease: str
    applicant: str = Field(description="The applicant's name.")
    status: str
    stage: str
    submitted: str
    submitted_here: bool
    assessable: bool


class DeskLists(BaseModel):
    submitted: list[DeskRow] = Field(description="Applications this hospital submitted.")
    to_assess: list[DeskRow] = Field(description="Applications it may assess now.")


class DeskStep(BaseModel):
    label: str
    state: str
    when: str = ""
    note: str = ""


class DeskDetail(DeskRow):
    steps: list[DeskStep]
    examination: str
    result: str
    reasons: list[str]


class Examination(BaseModel):
    at: datetime = Field(description="When, local time of the region unless an offset is given.")
    place: str = Field(max_length=200, description="Where the applicant goes.")


class Opinion(BaseModel):
    approve: bool
    opinion: str = Field(default="", max_length=2000, description="The assessment's opinion.")


class Said(BaseModel):
    message: str


def _row(case: DeskCase) -> dict[str, Any]:
    return {
        "application_id": case.application_id,
        "region": case.region,
        "disease": case.disease,
        "applicant": case.applicant,
        "status": case.status,
        "stage": case.stage,
        "submitted": case.submitted,
        "submitted_here": case.submitted_here,
        "assessable": case.assessable,
    }


@api.get("/applications")
async def api_desk_applications(hall: HallDep, who: DeskVisitor) -> DeskLists:
    """The hospital's submissions and the applications it may assess now."""
    submitted, to_assess = await desk_cases(hall, who)
    return DeskLists(
        submitted=[DeskRow(**_row(c)) for c in submitted],
        to_assess=[DeskRow(**_row(c)) for c in to_assess],
    )


class DeskApplicationIn(ApplicationIn):
    """The region's form, for the applicant named by ID number (insured in the desk's region);
    materials name documents the desk uploaded (POST /api/documents)."""

    id_number: str = Field(max_length=40, description="The applicant's resident ID number.")


@api.post(
    "/applications",
    dependencies=[Csrf],
    status_code=201,
    responses={422: {"description": "Not submitted: every problem (field, label, message)."}},
)
async def api_desk_apply(body: DeskApplicationIn, hall: HallDep, who: DeskVisitor) -> Submitted:
    """Submit for an applicant (辅助申报): the rules of the applicant's own form and of
    `chronic submit`; recorded as submitted by this hospital."""
    return await apply_form(hall, who, body, "已代为提交申请，审核结果将以短信通知申请人。")


@api.get("/applications/{application_id}")
async def api_desk_application(
    application_id: ApplicationId, hall: HallDep, who: DeskVisitor
) -> DeskDetail:
    """One application with its timeline (404 unless submitted here or assessable here)."""
    try:
        shown = await desk_case(hall, who, application_id)
    except cases.NotYours:
        raise HTTPException(404, "没有找到该申请") from None
    return DeskDetail(
        **_row(shown),
        steps=[DeskStep(**vars(s)) for s in shown.steps or []],
        examination=shown.examination,
        result=shown.result,
        reasons=shown.reasons or [],
    )


@api.post("/applications/{application_id}/examination", dependencies=[Csrf])
async def api_desk_examination(
    application_id: ApplicationId, body: Examination, hall: HallDep, who: DeskVisitor
) -> Said:
    """Schedule an on-site examination (409 with the validator's words when refused)."""
    try:
        return Said(message=await examine(hall, who, application_id, body.at, body.place))
    except cases.NotYours:
        raise HTTPException(404, "没有找到该申请") from None
    except CommandFailed as refused:
        raise HTTPException(409, str(refused)) from None


@api.post("/applications/{application_id}/opinion", dependencies=[Csrf])
async def api_desk_opinion(
    application_id: ApplicationId, body: Opinion, hall: HallDep, who: DeskVisitor
) -> Said:
    """Give the assessment's opinion (409 with the validator's words when refused)."""
    try:
        return Said(
            message=await give_opinion(hall, who, application_id, body.approve, body.opinion)
        )
    except cases.NotYours:
        raise HTTPException(404, "没有找到该申请") from None
    except CommandFailed as refused:
        raise HTTPException(409, str(refused)) from None

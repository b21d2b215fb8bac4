"""The JSON API under ``/api``: the same sign-in, timelines and expert actions as the pages.

Its OpenAPI document is at ``/api/openapi.json`` (the pages are left out of it), the
interactive docs at ``/api/docs``. A browser session's cookie authenticates; every POST carries
the CSRF token (``GET /api/csrf``) in the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response, UploadFile
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from chronic.actor import record_as
from chronic.cli.output import CommandFailed
from chronic.documents import DocumentRefused
from chronic.hall import applying, cases, security, totp
from chronic.hall.accounts import authenticate
from chronic.hall.app import (
    Applicant,
    ApplicationId,
    Csrf,
    ExpertVisitor,
    Hall,
    HallDep,
    VisitorDep,
    client_address,
    csrf_token,
    require,
    set_session_cookie,
)
from chronic.hall.sessions import Visitor, close_session, open_session
from chronic.hall.signin import WRONG_PASSWORD, SignInRefused
from models.benefit import DesignationKind

router = APIRouter(prefix="/api", tags=["hall"])
Uploader = Annotated[Visitor, Depends(require("applicant", "hospital"))]
"""Who may upload scans: applicants, and hospital desks submitting for one."""


class Message(BaseModel):
    message: str


class CsrfToken(BaseModel):
    csrf_token: str


class CodeRequest(BaseModel):
    id_number: str = Field(max_length=40, description="The applicant's resident ID number.")


class CodeSignIn(BaseModel):
    id_number: str = Field(max_length=40)
    code: str = Field(max_length=12, description="The six digits of the SMS.")


class PasswordSignIn(BaseModel):
    username: str = Field(max_length=32)
    password: str = Field(max_length=200)
    totp_code: str | None = Field(
        default=None,
        max_length=12,
        description="The authenticator's six digits, for an account with a second factor.",
    )


class Me(BaseModel):
    role: str
    username: str | None = None
    expert_code: str | None = None


class ApplicationSummary(BaseModel):
    application_id: str
    disease: str
    status: str
    submitted: str


class TimelineStep(BaseModel):
    label: str
    state: Literal["done", "current", "failed", "waiting"]
    when: str = ""
    note: str = ""


class TimelineView(BaseModel):
    application_id: str
    disease: str
    status: str
    steps: list[TimelineStep]
    result: str
    reasons: list[str]
    benefit: str
    live: bool


class TaskDocumentView(BaseModel):
    label: str
    sha256: str = Field(description="Open its pages at documents/{sha256}/pages/{n}.")


class TaskView(BaseModel):
    application_id: str
    disease: str
    stage: str
    status: str
    deadline: datetime | None
    seconds_left: int
    materials: list[str] = []
    documents: list[TaskDocumentView] = []


class DocumentView(BaseModel):
    """An uploaded scan or photo, kept encrypted; name it in a form by its sha256."""

    sha256: str
    media_type: str
    pages: int
    size: int


class MaterialIn(BaseModel):
    kind: str = Field(
        max_length=40,
        description="diagnosis_certificate, inpatient_record, exam_report, lab_result or "
        "discharge_summary.",
    )
    hospital: str = Field(max_length=16, description="Code of the issuing hospital.")
    issued_on: str = Field(max_length=20, description="Date on the document, YYYY-MM-DD.")
    sha256: str = Field(
        max_length=64, description="Of a document you uploaded (POST /api/documents)."
    )

    def entry(self) -> applying.MaterialEntry:
        return applying.MaterialEntry(
            kind=self.kind.strip(),
            hospital=self.hospital.strip(),
            issued_on=self.issued_on.strip(),
            sha256=self.sha256.strip().lower(),
        )


class ApplicationIn(BaseModel):
    """The region's application form; the name and ID number come from the register."""

    disease_code: str = Field(max_length=16)
    mobile: str = Field(max_length=20, description="Mobile for the result SMS.")
    case_number: str = Field(max_length=60, description="Case number (病案号).")
    diagnosing_hospital: str = Field(max_length=16)
    designated_hospital: str = Field(max_length=16)
    address: str = Field(default="", max_length=220)
    insured_district: str = Field(default="", max_length=60)
    diagnosis_setting: str = Field(
        default="", max_length=20, description="outpatient or inpatient."
    )
    inpatient_number: str = Field(default="", max_length=60)
    community_health_centre: str = Field(default="", max_length=16)
    designated_pharmacy: str = Field(default="", max_length=16)
    out_of_area: bool = False
    materials: list[MaterialIn] = Field(default=[], max_length=20)


class ResubmissionIn(BaseModel):
    materials: list[MaterialIn] = Field(default=[], max_length=20)


class Submitted(BaseModel):
    application_id: str
    message: str
    started: bool = Field(description="False: recorded; its process starts once Temporal answers.")


class Resubmitted(BaseModel):
    round: int
    message: str


class Problem(BaseModel):
    field: str = Field(description="Path in the form, e.g. materials[0].issued_on.")
    label: str = Field(description="The field's name on the page.")
    message: str = Field(description="What is wrong and what to do (Chinese).")


class Problems(BaseModel):
    detail: list[Problem]


def problems_answer(refused: applying.Refused) -> HTTPException:
    return HTTPException(
        422,
        [
            Problem(field=p, label=applying.label(p), message=m).model_dump()
            for p, m in refused.problems
        ],
    )


class ActionText(BaseModel):
    text: str = Field(
        default="",
        max_length=2000,
        description="Reason (decline), opinion (approve, reject) or note (request-materials).",
    )


class DesignationChange(BaseModel):
    kind: DesignationKind = Field(
        description="What changes: the designated hospital, or the designated pharmacy (in "
        "regions whose form designates one: Wuhan, Jilin)."
    )
    code: str = Field(
        min_length=1, max_length=16, description="The new hospital's or pharmacy's code."
    )


def _refused(error: SignInRefused) -> HTTPException:
    return HTTPException(429 if "过多" in str(error) else 400, str(error))


@router.get("/csrf")
async def csrf(request: Request) -> CsrfToken:
    """This browser's CSRF token (its CSRF cookie is set with the answer)."""
    return CsrfToken(csrf_token=csrf_token(request))


@router.post("/session/code", dependencies=[Csrf])
async def request_code(body: CodeRequest, request: Request, hall: HallDep) -> Message:
    """Send a one-time code to the mobile on the register (rate-limited)."""
    try:
        said = await hall.sign_in.request_code(
            await hall.temporal(), body.id_number, client_address(request)
        )
    except SignInRefused as refused:
        raise _refused(refused) from None
    return Message(message=said)


@router.post("/session", dependencies=[Csrf])
async def sign_in_with_code(
    body: CodeSignIn, request: Request, response: Response, hall: HallDep
) -> Me:
    """Sign in as an applicant with the code of the SMS."""
    try:
        person_id = await hall.sign_in.verify_code(
            body.id_number, body.code, client_address(request)
        )
    except SignInRefused as refused:
        raise _refused(refused) from None
    token = await open_session(hall.db, person_id=person_id)
    async with hall.db.session() as session:
        await record_as(session, f"applicant:#{person_id}", "hall_sign_in", None, by="sms_code")
    set_session_cookie(request, response, token)
    return Me(role="applicant")


@router.post("/session/staff", dependencies=[Csrf])
async def sign_in_with_password(
    body: PasswordSignIn, request: Request, response: Response, hall: HallDep
) -> Me:
    """Sign in as staff (an expert) with username and password (rate-limited)."""
    address = client_address(request)
    try:
        await hall.sign_in.password_attempt(body.username, address)
    except SignInRefused as refused:
        raise _refused(refused) from None
    async with hall.db.session() as session:
        user = await authenticate(session, body.username, body.password)
    if user is None or user.id is None:
        raise HTTPException(400, WRONG_PASSWORD)
    if totp.enabled(user):
        try:
            await totp.second_factor(hall, user.username, body.totp_code, address)
        except SignInRefused as refused:
            raise HTTPException(401 if body.totp_code is None else 400, str(refused)) from None
    token = await open_session(hall.db, user_id=user.id)
    async with hall.db.session() as session:
        await record_as(session, f"hall:{user.username}", "hall_sign_in", None, by="password")
    set_session_cookie(request, response, token)
    return Me(role=user.role, username=user.username, expert_code=user.expert_code)


@router.get("/me")
async def me(who: VisitorDep) -> Me:
    """Who is signed in."""
    return Me(role=who.role, username=who.username, expert_code=who.expert_code)


@router.post("/session/end", dependencies=[Csrf])
async def sign_out(request: Request, response: Response, hall: HallDep, who: VisitorDep) -> Message:
    await close_session(hall.db, request.cookies.get(security.SESSION_COOKIE))
    response.delete_cookie(security.SESSION_COOKIE, path="/")
    return Message(message="已退出登录")


@router.get("/applications")
async def applications(hall: HallDep, who: Applicant) -> list[ApplicationSummary]:
    """The signed-in applicant's own applications, newest first."""
    return [ApplicationSummary(**vars(s)) for s in await cases.my_applications(hall.db, who)]


@router.get("/applications/{application_id}")
async def application_timeline(
    application_id: ApplicationId, hall: HallDep, who: Applicant
) -> TimelineView:
    """An application's timeline (only the applicant's own; 404 for any other)."""
    try:
        shown = await cases.timeline(hall.db, await hall.temporal_or_none(), who, application_id)
    except cases.NotYours:
        raise HTTPException(404, "没有找到该申请") from None
    return TimelineView(
        application_id=shown.application_id,
        disease=shown.disease,
        status=shown.status,
        steps=[TimelineStep(**vars(s)) for s in shown.steps],
        result=shown.result,
        reasons=shown.reasons,
        benefit=shown.benefit,
        live=shown.live,
    )


@router.post("/applications/{application_id}/designation", dependencies=[Csrf])
async def change_designation(
    application_id: ApplicationId, body: DesignationChange, hall: HallDep, who: Applicant
) -> Message:
    """Change the designated hospital or pharmacy of the applicant's own benefit.

    A refusal (409) carries the benefit workflow validator's own words, as the CLI prints
    them (a code outside the region's register, the region's yearly limit reached).
    """
    try:
        said = await cases.change_my_designation(
            hall.db, await hall.temporal(), who, application_id, body.kind, body.code
        )
    except cases.NotYours:
        raise HTTPException(404, "没有找到该待遇") from None
    except CommandFailed as refused:
        raise HTTPException(409, str(refused)) from None
    return Message(message=said)


def _task_view(task: cases.Task) -> TaskView:
    return TaskView(
        application_id=task.application_id,
        disease=task.disease,
        stage=task.stage,
        status=task.status,
        deadline=task.deadline,
        seconds_left=task.seconds_left,
        materials=task.materials,
        documents=[TaskDocumentView(label=d.label, sha256=d.sha256) for d in task.documents],
    )


@router.get("/expert/tasks")
async def expert_inbox(hall: HallDep, who: ExpertVisitor) -> list[TaskView]:
    """The signed-in expert's inbox: offers to accept or decline, tasks to decide."""
    return [_task_view(t) for t in await cases.inbox(hall.db, await hall.temporal(), who)]


@router.get("/expert/tasks/{application_id}")
async def expert_task(application_id: ApplicationId, hall: HallDep, who: ExpertVisitor) -> TaskView:
    """One task, while it is offered to or held by the signed-in expert (else 404)."""
    try:
        return _task_view(await cases.task(hall.db, await hall.temporal(), who, application_id))
    except cases.NotYours:
        raise HTTPException(404, "该评审任务未推送给您或已结束") from None


@router.post("/expert/tasks/{application_id}/{action}", dependencies=[Csrf])
async def expert_action(
    application_id: ApplicationId,
    action: Literal["accept", "decline", "approve", "reject", "request-materials"],
    body: ActionText,
    hall: HallDep,
    who: ExpertVisitor,
) -> Message:
    """Accept, decline (reason), approve or reject (opinion), or ask for materials (note).

    A refusal (409) carries the workflow validator's own words, as the CLI prints them.
    """
    try:
        said = await cases.act(
            hall.db, await hall.temporal(), who, application_id, action, body.text
        )
    except cases.NotYours:
        raise HTTPException(404, "没有这项操作") from None
    except CommandFailed as refused:
        raise HTTPException(409, str(refused)) from None
    return Message(message=said)


# ---- applying ---------------------------------------------------------------------------------


@router.post("/documents", dependencies=[Csrf], status_code=201)
async def upload_document(file: UploadFile, hall: HallDep, who: Uploader) -> DocumentView:
    """Upload a scan or photo (PDF, JPEG or PNG by content; size and page limits); it is kept
    encrypted, and only you can name it in your application (or, at a hospital desk, in an
    application you submit for an applicant) by its sha256."""
    data = await file.read(hall.documents.max_bytes + 1)
    try:
        kept = await applying.keep_upload(hall.documents, hall.db, who, data)
    except DocumentRefused as refused:
        raise HTTPException(422, refused.said) from None
    return DocumentView(
        sha256=kept.sha256, media_type=kept.media_type, pages=kept.pages, size=kept.size
    )


@router.post(
    "/applications",
    dependencies=[Csrf],
    status_code=201,
    responses={422: {"model": Problems, "description": "Not submitted: every problem."}},
)
async def submit_application(body: ApplicationIn, hall: HallDep, who: Applicant) -> Submitted:
    """Submit an application of the region's form, its materials by the sha256 of documents
    you uploaded; the rules are those of `chronic submit`."""
    return await apply_form(hall, who, body, "申请已提交，审核结果将以短信通知。")


async def apply_form(hall: Hall, who: Visitor, body: ApplicationIn, said: str) -> Submitted:
    """Submit ``body`` as ``who`` (an applicant, or a desk for one): 201 with ``said``, or 422
    with every problem. The one door of the applicant's and the desk's API."""
    draft = applying.Draft(
        **body.model_dump(exclude={"materials"}), materials=[m.entry() for m in body.materials]
    )
    try:
        application_id, started = await applying.apply(
            hall.db, await hall.temporal_or_none(), hall.settings, who, draft
        )
    except applying.Refused as refused:
        raise problems_answer(refused) from None
    return Submitted(application_id=application_id, started=started, message=said)


@router.post(
    "/applications/{application_id}/resubmission",
    dependencies=[Csrf],
    responses={422: {"model": Problems, "description": "Not taken: every problem."}},
)
async def resubmit_application(
    application_id: ApplicationId, body: ResubmissionIn, hall: HallDep, who: Applicant
) -> Resubmitted:
    """Bring the materials asked for to your returned or paused application (the Update of
    `chronic resubmit`); a refusal of the process is 409 with its reason."""
    try:
        await cases.own_row(hall.db, who, application_id)
    except cases.NotYours:
        raise HTTPException(404, "没有找到该申请") from None
    try:
        new_round = await applying.resubmit(
            hall.db, await hall.temporal(), who, application_id, [m.entry() for m in body.materials]
        )
    except applying.Refused as refused:
        raise problems_answer(refused) from None
    except CommandFailed as failed:
        raise HTTPException(409, applying.chinese("", str(failed))) from None
    return Resubmitted(round=new_round, message=f"补充材料已提交（第{new_round}轮），将重新审核。")


@router.get(
    "/expert/tasks/{application_id}/documents/{sha256}/pages/{number}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The page as a PNG."}},
)
async def expert_document_page(
    application_id: ApplicationId,
    sha256: Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$")],
    number: Annotated[int, PathParam(ge=1, le=1000)],
    hall: HallDep,
    who: ExpertVisitor,
) -> Response:
    """A page of a material while the task is offered to or held by you (else 404); each page
    shown is in the audit trail."""
    try:
        png = await cases.shown_page(
            hall.db, await hall.temporal(), hall.documents, who, application_id, sha256, number
        )
    except cases.NotYours:
        raise HTTPException(404, "该材料不属于您的评审任务") from None
    return Response(png, media_type="image/png")

"""The hall's pages (server-rendered, Simplified Chinese, mobile-first)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from chronic.actor import record_as
from chronic.cli.output import CommandFailed
from chronic.hall import applying, cases, security, totp
from chronic.hall.accounts import authenticate
from chronic.hall.app import (
    Applicant,
    ApplicationId,
    Csrf,
    ExpertVisitor,
    Hall,
    HallDep,
    client_address,
    csrf_token,
    set_session_cookie,
    templates,
)
from chronic.hall.sessions import Visitor, close_session, open_session, visitor_of
from chronic.hall.signin import WRONG_PASSWORD, SignInRefused
from models.benefit import DesignationKind

router = APIRouter(include_in_schema=False)


def page(
    request: Request, name: str, who: Visitor | None = None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"csrf": csrf_token(request), "who": who, **context},
        status_code=status_code,
    )


HOME = {
    "applicant": "/me",
    "expert": "/expert",
    "hospital": "/desk",
    "clerk": "/office",
    "operator": "/office",
}


@router.get("/")
async def home(request: Request, hall: HallDep) -> Response:
    who = await visitor_of(hall.db, request.cookies.get(security.SESSION_COOKIE))
    return RedirectResponse(HOME.get(who.role, "/login") if who else "/login", status_code=303)


Next = Annotated[str, Form(max_length=500)]
"""The page to open once signed in (honoured only as a local path: ``security.safe_next``)."""


def landing(role: str, wanted: str | None) -> str:
    """Where a sign-in leads: the page asked for when it is a local path, else home."""
    return security.safe_next(wanted) or HOME.get(role, "/")


@router.get("/login")
async def login(request: Request, next: str = "") -> HTMLResponse:
    return page(request, "login.html", next=security.safe_next(next) or "")


@router.post("/login/code", dependencies=[Csrf])
async def login_code(
    request: Request,
    hall: HallDep,
    id_number: Annotated[str, Form(max_length=40)],
    next: Next = "",
) -> HTMLResponse:
    """Step 1 of an applicant's sign-in: a code to the register's mobile."""
    next = security.safe_next(next) or ""
    try:
        message = await hall.sign_in.request_code(
            await hall.temporal(), id_number, client_address(request)
        )
    except SignInRefused as refused:
        return page(
            request,
            "login.html",
            error=str(refused),
            next=next,
            status_code=429 if "过多" in str(refused) else 400,
        )
    return page(request, "login.html", sent=message, id_number=id_number.strip(), next=next)


@router.post("/login/verify", dependencies=[Csrf])
async def login_verify(
    request: Request,
    hall: HallDep,
    id_number: Annotated[str, Form(max_length=40)],
    code: Annotated[str, Form(max_length=12)],
    next: Next = "",
) -> Response:
    """Step 2: the code from the SMS opens a session (and leads to ``next``, if local)."""
    try:
        person_id = await hall.sign_in.verify_code(id_number, code, client_address(request))
    except SignInRefused as refused:
        return page(
            request,
            "login.html",
            error=str(refused),
            sent="",
            id_number=id_number.strip(),
            next=security.safe_next(next) or "",
            status_code=429 if "过多" in str(refused) else 400,
        )
    token = await open_session(hall.db, person_id=person_id)
    async with hall.db.session() as session:
        await record_as(session, f"applicant:#{person_id}", "hall_sign_in", None, by="sms_code")
    response = RedirectResponse(landing("applicant", next), status_code=303)
    set_session_cookie(request, response, token)
    return response


@router.post("/login/staff", dependencies=[Csrf])
async def login_staff(
    request: Request,
    hall: HallDep,
    username: Annotated[str, Form(max_length=32)],
    password: Annotated[str, Form(max_length=200)],
    next: Next = "",
) -> Response:
    """Staff sign in with username and password (then the TOTP code, when enabled)."""
    address = client_address(request)
    next = security.safe_next(next) or ""
    try:
        await hall.sign_in.password_attempt(username, address)
    except SignInRefused as refused:
        return page(request, "login.html", staff_error=str(refused), next=next, status_code=429)
    async with hall.db.session() as session:
        user = await authenticate(session, username, password)
    if user is None or user.id is None:
        return page(request, "login.html", staff_error=WRONG_PASSWORD, next=next, status_code=400)
    if totp.enabled(user):
        return totp.ask_code(request, hall, user, next)
    token = await open_session(hall.db, user_id=user.id)
    async with hall.db.session() as session:
        await record_as(session, f"hall:{user.username}", "hall_sign_in", None, by="password")
    response = RedirectResponse(landing(user.role, next), status_code=303)
    set_session_cookie(request, response, token)
    return response


@router.post("/logout", dependencies=[Csrf])
async def logout(request: Request, hall: HallDep) -> Response:
    await close_session(hall.db, request.cookies.get(security.SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE, path="/")
    return response


def outcome(
    request: Request,
    who: Visitor,
    application_id: str,
    done: str | CommandFailed,
    back: str | None = None,
) -> HTMLResponse:
    """The page after an action: what was done, or the refusal in the validator's words."""
    if isinstance(done, CommandFailed):
        return page(
            request,
            "done.html",
            who,
            refused=str(done),
            status_code=409,
            application_id=application_id,
            back=back,
        )
    return page(request, "done.html", who, said=done, application_id=application_id, back=back)


# ---- applicants -------------------------------------------------------------------------------


@router.get("/me")
async def my_applications(request: Request, hall: HallDep, who: Applicant) -> HTMLResponse:
    found = await cases.my_applications(hall.db, who)
    return page(request, "applications.html", who, applications=found)


_text = applying.form_text


async def materials_of(
    hall: Hall, who: Visitor, form: FormData
) -> tuple[list[applying.MaterialEntry], list[tuple[str, str]]]:
    """The page's material rows: what was typed, files uploaded now (kept at once, so a refused
    form loses none) or earlier (their digest carried in the page); and refused uploads."""
    entries, refused = [], []
    for slot in range(applying.SLOTS):
        entry = applying.MaterialEntry(
            kind=_text(form, f"kind_{slot}", 40),
            hospital=_text(form, f"hospital_{slot}", 16),
            issued_on=_text(form, f"issued_on_{slot}", 20),
            sha256=_text(form, f"sha256_{slot}", 64),
            name=_text(form, f"name_{slot}", 80),
            pages=int(p) if (p := _text(form, f"pages_{slot}", 4)).isdigit() else 0,
        )
        said = await applying.keep_row_file(hall.documents, hall.db, who, form, slot, entry)
        if said is not None:
            refused.append((f"materials[{slot}].file", said))
        entries.append(entry)
    return entries, refused


def draft_of(form: FormData, materials: list[applying.MaterialEntry]) -> applying.Draft:
    return applying.Draft(
        disease_code=_text(form, "disease_code", 16),
        id_number=_text(form, "id_number", 40),
        mobile=_text(form, "mobile", 20),
        case_number=_text(form, "case_number", 60),
        diagnosing_hospital=_text(form, "diagnosing_hospital", 16),
        designated_hospital=_text(form, "designated_hospital", 16),
        address=_text(form, "address", 220),
        insured_district=_text(form, "insured_district", 60),
        diagnosis_setting=_text(form, "diagnosis_setting", 20),
        inpatient_number=_text(form, "inpatient_number", 60),
        community_health_centre=_text(form, "community_health_centre", 16),
        designated_pharmacy=_text(form, "designated_pharmacy", 16),
        out_of_area=form.get("out_of_area") == "on",
        materials=materials,
    )


def _max_mb(hall: Hall) -> str:
    return f"{hall.documents.max_bytes / (1024 * 1024):g}"


def blank_rows() -> list[applying.MaterialEntry]:
    return [applying.MaterialEntry() for _ in range(applying.SLOTS)]


APPLICANT_FORM = {
    "action": "/me/apply",
    "layout": "base.html",
    "back": ("/me", "我的申请"),
    "heading": "申请门诊慢特病认定",
}
DESK_FORM = {
    "action": "/desk/apply",
    "layout": "office_base.html",
    "back": ("/desk", "医院经办"),
    "heading": "代为申报门诊慢特病认定（辅助申报）",
}
"""The one application page, as the applicant's (``/me/apply``) or a desk's (``/desk/apply``)."""


async def apply_page(
    request: Request,
    hall: Hall,
    who: Visitor,
    draft: applying.Draft,
    problems: list[tuple[str, str]] | None = None,
) -> HTMLResponse:
    """The application form of the region (the applicant's, or the desk's hospital's), with
    what was typed and uploaded, and the problems (400) when it was refused."""
    if who.role == "hospital":
        region = await applying.desk_region(hall.db, who)
    else:
        region = (await applying.person_of(hall.db, who)).region
    options = await applying.choices(hall.db, hall.settings, region)
    return page(
        request,
        "apply.html",
        who,
        draft=draft,
        options=options,
        problems=[(applying.label(p), m, p) for p, m in problems or []],
        max_mb=_max_mb(hall),
        desk=who.role == "hospital",
        **(DESK_FORM if who.role == "hospital" else APPLICANT_FORM),
        status_code=400 if problems else 200,
    )


@router.get("/me/apply")
async def apply_form(request: Request, hall: HallDep, who: Applicant) -> HTMLResponse:
    """The application form of the applicant's region (mobile first)."""
    person = await applying.person_of(hall.db, who)
    draft = applying.Draft(mobile=person.mobile.removeprefix("+86"), materials=blank_rows())
    return await apply_page(request, hall, who, draft)


@router.post("/me/apply", dependencies=[Csrf])
async def apply(request: Request, hall: HallDep, who: Applicant) -> HTMLResponse:
    """Submit the form with its scans; a refused form comes back with everything kept."""
    form = await request.form()
    materials, refused = await materials_of(hall, who, form)
    draft = draft_of(form, materials)
    try:
        application_id, started = await applying.apply(
            hall.db, await hall.temporal_or_none(), hall.settings, who, draft, refused
        )
    except applying.Refused as problems:
        return await apply_page(request, hall, who, draft, problems.problems)
    said = "申请已提交，审核结果将以短信通知。" + (
        "" if started else "办理系统暂未响应，申请已登记，将自动开始办理，无需重新提交。"
    )
    return outcome(request, who, application_id, said, back=f"/me/applications/{application_id}")


async def _timeline_page(
    request: Request,
    hall: Hall,
    who: Applicant,
    application_id: str,
    *,
    rows: list[applying.MaterialEntry] | None = None,
    problems: list[tuple[str, str]] | None = None,
) -> HTMLResponse:
    try:
        shown = await cases.timeline(hall.db, await hall.temporal_or_none(), who, application_id)
    except cases.NotYours:
        return page(request, "error.html", who, message="没有找到该申请。", status_code=404)
    hospitals, pharmacies = (
        await cases.designations_of(hall.db, shown.region) if shown.card else ([], [])
    )
    options = (
        await applying.choices(hall.db, hall.settings, shown.region) if shown.resubmit else None
    )
    return page(
        request,
        "timeline.html",
        who,
        timeline=shown,
        hospitals=hospitals,
        pharmacies=pharmacies,
        options=options,
        rows=rows or blank_rows(),
        problems=[(applying.label(p), m, p) for p, m in problems or []],
        status_code=400 if problems else 200,
    )


@router.get("/me/applications/{application_id}")
async def my_timeline(
    request: Request, hall: HallDep, who: Applicant, application_id: ApplicationId
) -> HTMLResponse:
    return await _timeline_page(request, hall, who, application_id)


@router.post("/me/applications/{application_id}/resubmit", dependencies=[Csrf])
async def resubmit(
    request: Request, hall: HallDep, who: Applicant, application_id: ApplicationId
) -> HTMLResponse:
    """Bring the materials asked for (returned, or an expert asked for more)."""
    try:
        await cases.own_row(hall.db, who, application_id)
    except cases.NotYours:
        return page(request, "error.html", who, message="没有找到该申请。", status_code=404)
    form = await request.form()
    rows, refused = await materials_of(hall, who, form)
    try:
        new_round = await applying.resubmit(
            hall.db, await hall.temporal(), who, application_id, rows, refused
        )
    except applying.Refused as problems:
        return await _timeline_page(
            request, hall, who, application_id, rows=rows, problems=problems.problems
        )
    except CommandFailed as failed:
        return outcome(
            request,
            who,
            application_id,
            CommandFailed(applying.chinese("", str(failed))),
            back=f"/me/applications/{application_id}",
        )
    return outcome(
        request,
        who,
        application_id,
        f"补充材料已提交（第{new_round}轮），将重新审核。",
        back=f"/me/applications/{application_id}",
    )


@router.post("/me/applications/{application_id}/hospital", dependencies=[Csrf])
async def change_my_hospital(
    request: Request,
    hall: HallDep,
    who: Applicant,
    application_id: ApplicationId,
    hospital: Annotated[str, Form(max_length=16)],
) -> HTMLResponse:
    """Change the designated hospital (the region's yearly limit holds)."""
    return await _change_designation(
        request, hall, who, application_id, DesignationKind.HOSPITAL, hospital
    )


@router.post("/me/applications/{application_id}/pharmacy", dependencies=[Csrf])
async def change_my_pharmacy(
    request: Request,
    hall: HallDep,
    who: Applicant,
    application_id: ApplicationId,
    pharmacy: Annotated[str, Form(max_length=16)],
) -> HTMLResponse:
    """Change the designated pharmacy (Wuhan, Jilin; the yearly limit is counted apart)."""
    return await _change_designation(
        request, hall, who, application_id, DesignationKind.PHARMACY, pharmacy
    )


async def _change_designation(
    request: Request,
    hall: HallDep,
    who: Visitor,
    application_id: str,
    kind: DesignationKind,
    code: str,
) -> HTMLResponse:
    try:
        said: str | CommandFailed = await cases.change_my_designation(
            hall.db, await hall.temporal(), who, application_id, kind, code
        )
    except cases.NotYours:
        return page(request, "error.html", who, message="没有找到该待遇。", status_code=404)
    except CommandFailed as refused:
        said = refused
    return outcome(request, who, application_id, said, back=f"/me/applications/{application_id}")


@router.get("/me/applications/{application_id}/card.pdf")
async def my_card(
    request: Request, hall: HallDep, who: Applicant, application_id: ApplicationId
) -> Response:
    """The benefit card (门诊慢病卡) to print or show at the designated hospital."""
    try:
        pdf = await cases.my_card(hall.db, who, application_id)
    except cases.NotYours:
        return page(request, "error.html", who, message="没有找到该待遇。", status_code=404)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="card-{application_id}.pdf"',
            "Cache-Control": "no-store",  # it carries the ID number
        },
    )


# ---- experts ----------------------------------------------------------------------------------


@router.get("/expert")
async def expert_inbox(request: Request, hall: HallDep, who: ExpertVisitor) -> HTMLResponse:
    tasks = await cases.inbox(hall.db, await hall.temporal(), who)
    return page(request, "inbox.html", who, tasks=tasks)


@router.get("/expert/tasks/{application_id}")
async def expert_task(
    request: Request, hall: HallDep, who: ExpertVisitor, application_id: ApplicationId
) -> HTMLResponse:
    try:
        shown = await cases.task(hall.db, await hall.temporal(), who, application_id)
    except cases.NotYours:
        return page(
            request, "error.html", who, message="该评审任务未推送给您或已结束。", status_code=404
        )
    return page(request, "task.html", who, task=shown)


Sha256 = Annotated[
    str, PathParam(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the material's scan.")
]


@router.get("/expert/tasks/{application_id}/documents/{sha256}")
async def expert_document(
    request: Request,
    hall: HallDep,
    who: ExpertVisitor,
    application_id: ApplicationId,
    sha256: Sha256,
) -> HTMLResponse:
    """A material's pages inline, only while the task is offered to or held by this expert."""
    try:
        task, document, _, described = await cases.task_document(
            hall.db, await hall.temporal(), hall.documents, who, application_id, sha256
        )
    except cases.NoScan:
        return page(
            request,
            "error.html",
            who,
            message="该材料没有上传电子文件（申请时只登记了文件摘要），请联系经办机构查阅原件。",
            status_code=404,
        )
    except cases.NotYours:
        return page(
            request, "error.html", who, message="该材料不属于您的评审任务。", status_code=404
        )
    return page(
        request,
        "document.html",
        who,
        task=task,
        document=document,
        pages=range(1, described.pages + 1),
    )


@router.get("/expert/tasks/{application_id}/documents/{sha256}/pages/{number}.png")
async def expert_document_page(
    hall: HallDep,
    who: ExpertVisitor,
    application_id: ApplicationId,
    sha256: Sha256,
    number: Annotated[int, PathParam(ge=1, le=1000)],
) -> Response:
    """One page as a PNG; each one shown is in the audit trail."""
    try:
        png = await cases.shown_page(
            hall.db, await hall.temporal(), hall.documents, who, application_id, sha256, number
        )
    except cases.NotYours:
        raise HTTPException(404, "该材料不属于您的评审任务。") from None
    return Response(png, media_type="image/png")


@router.post("/expert/tasks/{application_id}/{action}", dependencies=[Csrf])
async def expert_action(
    request: Request,
    hall: HallDep,
    who: ExpertVisitor,
    application_id: ApplicationId,
    action: str,
    text: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    try:
        said: str | CommandFailed = await cases.act(
            hall.db, await hall.temporal(), who, application_id, action, text
        )
    except cases.NotYours:
        return page(request, "error.html", who, message="没有这项操作。", status_code=404)
    except CommandFailed as refused:
        said = refused
    return outcome(request, who, application_id, said)

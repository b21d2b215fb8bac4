"""The hall's pages (server-rendered, Simplified Chinese, mobile-first)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from chronic.actor import record_as
from chronic.cli.output import CommandFailed
from chronic.hall import cases, security, totp
from chronic.hall.accounts import authenticate
from chronic.hall.app import (
    Applicant,
    ApplicationId,
    Csrf,
    ExpertVisitor,
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


@router.get("/login")
async def login(request: Request) -> HTMLResponse:
    return page(request, "login.html")


@router.post("/login/code", dependencies=[Csrf])
async def login_code(
    request: Request, hall: HallDep, id_number: Annotated[str, Form(max_length=40)]
) -> HTMLResponse:
    """Step 1 of an applicant's sign-in: a code to the register's mobile."""
    try:
        message = await hall.sign_in.request_code(
            await hall.temporal(), id_number, client_address(request)
        )
    except SignInRefused as refused:
        return page(
            request,
            "login.html",
            error=str(refused),
            status_code=429 if "过多" in str(refused) else 400,
        )
    return page(request, "login.html", sent=message, id_number=id_number.strip())


@router.post("/login/verify", dependencies=[Csrf])
async def login_verify(
    request: Request,
    hall: HallDep,
    id_number: Annotated[str, Form(max_length=40)],
    code: Annotated[str, Form(max_length=12)],
) -> Response:
    """Step 2: the code from the SMS opens a session."""
    try:
        person_id = await hall.sign_in.verify_code(id_number, code, client_address(request))
    except SignInRefused as refused:
        return page(
            request,
            "login.html",
            error=str(refused),
            sent="",
            id_number=id_number.strip(),
            status_code=429 if "过多" in str(refused) else 400,
        )
    token = await open_session(hall.db, person_id=person_id)
    async with hall.db.session() as session:
        await record_as(session, f"applicant:#{person_id}", "hall_sign_in", None, by="sms_code")
    response = RedirectResponse("/me", status_code=303)
    set_session_cookie(request, response, token)
    return response


@router.post("/login/staff", dependencies=[Csrf])
async def login_staff(
    request: Request,
    hall: HallDep,
    username: Annotated[str, Form(max_length=32)],
    password: Annotated[str, Form(max_length=200)],
) -> Response:
    """Staff (experts for now) sign in with username and password."""
    address = client_address(request)
    try:
        await hall.sign_in.password_attempt(username, address)
    except SignInRefused as refused:
        return page(request, "login.html", staff_error=str(refused), status_code=429)
    async with hall.db.session() as session:
        user = await authenticate(session, username, password)
    if user is None or user.id is None:
        return page(request, "login.html", staff_error=WRONG_PASSWORD, status_code=400)
    if totp.enabled(user):
        return totp.ask_code(request, hall, user)
    token = await open_session(hall.db, user_id=user.id)
    async with hall.db.session() as session:
        await record_as(session, f"hall:{user.username}", "hall_sign_in", None, by="password")
    response = RedirectResponse(HOME.get(user.role, "/"), status_code=303)
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


@router.get("/me/applications/{application_id}")
async def my_timeline(
    request: Request, hall: HallDep, who: Applicant, application_id: ApplicationId
) -> HTMLResponse:
    try:
        shown = await cases.timeline(hall.db, await hall.temporal_or_none(), who, application_id)
    except cases.NotYours:
        return page(request, "error.html", who, message="没有找到该申请。", status_code=404)
    hospitals = await cases.hospitals_of(hall.db, shown.region) if shown.card else []
    pharmacies = await cases.pharmacies_of(hall.db, shown.region) if shown.card else []
    return page(
        request, "timeline.html", who, timeline=shown, hospitals=hospitals, pharmacies=pharmacies
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
    tasks = await cases.inbox(await hall.temporal(), who)
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

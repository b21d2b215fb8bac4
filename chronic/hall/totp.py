"""A second factor for staff accounts: time-based one-time codes (TOTP, RFC 6238, pyotp).

Enrolment (``/account/totp``): the hall makes a secret, shows it once (the ``otpauth://`` URI
for an authenticator app, and the secret to type), and keeps it only sealed
(:mod:`chronic.sms.sealed`, AES-GCM under the office's payload keys). It is enabled once a code
from the app is confirmed. From then on, a correct password is not enough: the sign-in page
asks for the code (a short-lived pending cookie, keyed, carries who passed the password), and
the API wants ``totp_code`` with the password. A code works once (the last time step used is
kept), one step of clock drift either way is accepted, and every code tried counts against the
password's rate limit of the name and the address. ``chronic user reset NAME --totp`` clears it.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import pyotp
from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chronic.actor import record_as
from chronic.hall import security
from chronic.hall.app import (
    Csrf,
    Hall,
    HallDep,
    client_address,
    csrf_token,
    require,
    secure_cookies,
    set_session_cookie,
    templates,
)
from chronic.hall.sessions import Visitor, open_session
from chronic.hall.signin import SignInRefused
from chronic.sms.sealed import seal, unseal
from models.tables import HallSession, HallUser

ISSUER = "门诊慢特病网上服务大厅"
PENDING_COOKIE = "chronic_hall_2fa"
PENDING_SECONDS = 300
"""How long the code may be entered after the password was accepted."""
WRONG_CODE = "动态验证码错误或已使用，请输入验证器中的最新验证码。"
CODE_NEEDED = "该账号已启用动态验证码，请输入验证器中的6位验证码。"
ALREADY = "动态验证码已启用；如需更换，请联系运维人员重置（chronic user reset --totp）。"

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/account", tags=["account"])

StaffVisitor = Annotated[Visitor, Depends(require("expert", "hospital", "clerk", "operator"))]


def enabled(user: HallUser) -> bool:
    return user.totp_secret is not None and user.totp_confirmed_at is not None


def _matching_step(secret: str, code: str, after: int | None, now: float) -> int | None:
    """The time step (±1 around now) whose code is ``code`` and that is newer than ``after``."""
    code = code.strip()
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now) // totp.interval
    for step in (current - 1, current, current + 1):
        if (after is None or step > after) and hmac.compare_digest(
            totp.at(step * totp.interval), code
        ):
            return step
    return None


def check_code(user: HallUser, code: str, *, pending: bool = False) -> bool:
    """True when ``code`` is a fresh code of the user's secret; the step is then used up
    (the caller commits ``user``). ``pending``: the secret not yet confirmed (enrolment)."""
    if user.totp_secret is None or (user.totp_confirmed_at is None) != pending:
        return False
    step = _matching_step(unseal(user.totp_secret), code, user.totp_last_step, time.time())
    if step is None:
        return False
    user.totp_last_step = step
    return True


async def clear(session: AsyncSession, user: HallUser) -> None:
    """Remove the second factor (``chronic user reset --totp``); the account's sessions end."""
    user.totp_secret = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    session.add(user)
    await session.exec(delete(HallSession).where(col(HallSession.user_id) == user.id))


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str


async def _user(session: AsyncSession, username: str | None) -> HallUser:
    user = (await session.exec(select(HallUser).where(HallUser.username == username))).first()
    if user is None:
        raise HTTPException(403, "无权访问此页面 (not for this account)")
    return user


async def start(hall: Hall, visitor: Visitor) -> Enrolment:
    """A new secret for the signed-in account (replacing an unconfirmed one), shown once.

    Raises:
        HTTPException: 409 when a confirmed second factor is in place.
    """
    secret = pyotp.random_base32()
    async with hall.db.session() as session:
        user = await _user(session, visitor.username)
        if enabled(user):
            raise HTTPException(409, ALREADY)
        user.totp_secret = seal(secret)
        user.totp_confirmed_at = None
        user.totp_last_step = None
        session.add(user)
        await record_as(session, visitor.actor, "hall_totp_enrolment_started", None)
    uri = pyotp.TOTP(secret).provisioning_uri(name=visitor.username or "", issuer_name=ISSUER)
    return Enrolment(secret, uri)


async def confirm(hall: Hall, visitor: Visitor, code: str, address: str) -> None:
    """Enable the second factor with a code of the new secret (counted like a password).

    Raises:
        SignInRefused: too many attempts, or a wrong code.
    """
    assert visitor.username is not None
    await hall.sign_in.password_attempt(visitor.username, address)
    async with hall.db.session() as session:
        user = await _user(session, visitor.username)
        if enabled(user):
            raise SignInRefused(ALREADY)
        if not check_code(user, code, pending=True):
            raise SignInRefused(WRONG_CODE)
        user.totp_confirmed_at = datetime.now(UTC)
        session.add(user)
        await record_as(session, visitor.actor, "hall_totp_enabled", None)


async def second_factor(hall: Hall, username: str, code: str | None, address: str) -> None:
    """Check the code of an account whose password was just accepted (the API's one step).

    Raises:
        SignInRefused: no code, a wrong or used code, or too many attempts.
    """
    if not code:
        raise SignInRefused(CODE_NEEDED)
    async with hall.db.session() as session:
        user = await _user(session, username)
        if not check_code(user, code):
            raise SignInRefused(WRONG_CODE)
        session.add(user)


# ---- the sign-in page's second step -----------------------------------------------------------


def _pending_value(key: bytes, user: HallUser, expires: int) -> str:
    mac = security.keyed(key, "totp-pending", f"{user.id}:{expires}:{user.password_hash}")
    return f"{user.id}.{expires}.{mac}"


def ask_code(request: Request, hall: Hall, user: HallUser, next: str = "") -> Response:
    """The password was right and the account has a second factor: ask for the code (the
    page to open afterwards, ``next``, goes along)."""
    expires = int(time.time()) + PENDING_SECONDS
    response = templates.TemplateResponse(
        request,
        "login_totp.html",
        {"csrf": csrf_token(request), "who": None, "next": security.safe_next(next) or ""},
    )
    response.set_cookie(
        PENDING_COOKIE,
        _pending_value(hall.key, user, expires),
        max_age=PENDING_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/login",
    )
    return response


async def _pending_user(hall: Hall, value: str | None) -> HallUser | None:
    parts = (value or "").split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    if int(parts[1]) < time.time():
        return None
    async with hall.db.session() as session:
        user = await session.get(HallUser, int(parts[0]))
    if user is None or user.disabled or not enabled(user):
        return None
    if not hmac.compare_digest(_pending_value(hall.key, user, int(parts[1])), value or ""):
        return None
    return user


@pages.post("/login/totp", dependencies=[Csrf])
async def login_totp(
    request: Request,
    hall: HallDep,
    code: Annotated[str, Form(max_length=12)],
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Step 2 of a staff sign-in with a second factor: the authenticator's code."""
    from chronic.hall.pages import landing

    next = security.safe_next(next) or ""

    user = await _pending_user(hall, request.cookies.get(PENDING_COOKIE))
    if user is None or user.id is None:
        return RedirectResponse("/login", status_code=303)

    def again(message: str, status_code: int) -> Response:
        return templates.TemplateResponse(
            request,
            "login_totp.html",
            {"csrf": csrf_token(request), "who": None, "error": message, "next": next},
            status_code=status_code,
        )

    try:
        await hall.sign_in.password_attempt(user.username, client_address(request))
        await second_factor(hall, user.username, code, client_address(request))
    except SignInRefused as refused:
        return again(str(refused), 429 if "过多" in str(refused) else 400)
    token = await open_session(hall.db, user_id=user.id)
    async with hall.db.session() as session:
        await record_as(session, f"hall:{user.username}", "hall_sign_in", None, by="password+totp")
    response = RedirectResponse(landing(user.role, next), status_code=303)
    response.delete_cookie(PENDING_COOKIE, path="/login")
    set_session_cookie(request, response, token)
    return response


# ---- enrolment pages --------------------------------------------------------------------------


async def _state(hall: Hall, visitor: Visitor) -> str:
    async with hall.db.session() as session:
        user = await _user(session, visitor.username)
    return "enabled" if enabled(user) else "pending" if user.totp_secret else "off"


def _page(request: Request, who: Visitor, status_code: int = 200, **context: object) -> Response:
    return templates.TemplateResponse(
        request,
        "account_totp.html",
        {"csrf": csrf_token(request), "who": who, **context},
        status_code=status_code,
    )


@pages.get("/account/totp")
async def totp_page(request: Request, hall: HallDep, who: StaffVisitor) -> Response:
    return _page(request, who, state=await _state(hall, who))


@pages.post("/account/totp/start", dependencies=[Csrf])
async def totp_start(request: Request, hall: HallDep, who: StaffVisitor) -> Response:
    try:
        enrolment = await start(hall, who)
    except HTTPException as refused:
        return _page(request, who, state="enabled", error=refused.detail, status_code=409)
    return _page(request, who, state="pending", enrolment=enrolment)


@pages.post("/account/totp/confirm", dependencies=[Csrf])
async def totp_confirm(
    request: Request, hall: HallDep, who: StaffVisitor, code: Annotated[str, Form(max_length=12)]
) -> Response:
    try:
        await confirm(hall, who, code, client_address(request))
    except SignInRefused as refused:
        return _page(
            request,
            who,
            state=await _state(hall, who),
            error=str(refused),
            status_code=429 if "过多" in str(refused) else 400,
        )
    return _page(request, who, state="enabled", said="动态验证码已启用，下次登录时需输入。")


# ---- API --------------------------------------------------------------------------------------


class TotpEnrolment(BaseModel):
    secret: str = Field(description="The secret (base32), shown this once.")
    uri: str = Field(description="otpauth:// URI for an authenticator app.")


class TotpCode(BaseModel):
    code: str = Field(max_length=12, description="The six digits of the authenticator.")


class TotpDone(BaseModel):
    message: str


@api.post("/totp", dependencies=[Csrf])
async def api_totp_start(hall: HallDep, who: StaffVisitor) -> TotpEnrolment:
    """Start enrolling a second factor: the secret is shown this once (409 when enabled)."""
    enrolment = await start(hall, who)
    return TotpEnrolment(secret=enrolment.secret, uri=enrolment.uri)


@api.post("/totp/confirm", dependencies=[Csrf])
async def api_totp_confirm(
    body: TotpCode, request: Request, hall: HallDep, who: StaffVisitor
) -> TotpDone:
    """Enable the second factor with a code of the new secret (rate-limited)."""
    try:
        await confirm(hall, who, body.code, client_address(request))
    except SignInRefused as refused:
        raise HTTPException(429 if "过多" in str(refused) else 400, str(refused)) from None
    return TotpDone(message="动态验证码已启用")


@api.get("/totp")
async def api_totp_state(hall: HallDep, who: StaffVisitor) -> TotpDone:
    """``enabled``, ``pending`` (not confirmed yet) or ``off``."""
    return TotpDone(message=await _state(hall, who))

"""The hall's app factory: settings, database, Temporal client, cookies, CSRF, templates.

``create_app()`` is what ``chronic hall`` serves with uvicorn; tests build one on their own
database and Temporal client. Every route takes the visitor from a dependency
(:func:`visitor`): pages send a visitor without a session to the sign-in page (303), the API
answers 401; the page's path goes along (``next``, a local path only:
:func:`security.safe_next`), so it opens once signed in. Every state-changing request must
carry the CSRF token bound to the browser's CSRF cookie (form field ``csrf_token`` or header
``X-CSRF-Token``), else 403.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, Response
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client
from temporalio.service import RPCError

from chronic.db import Database
from chronic.documents import DocumentStore
from chronic.hall import security
from chronic.hall.sessions import Visitor, visitor_of
from chronic.hall.signin import SignIn
from chronic.settings import Settings, get_settings

logger = logging.getLogger("chronic.hall")
HERE = FilePath(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


class TemporalUnavailable(Exception):
    """Temporal does not answer: the page or call says so (503) instead of failing."""


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The pages load nothing but the hall's own files: no inline script, no other origin."""

UNAVAILABLE = "办理系统暂时无法访问，请稍后再试。"
TOO_LARGE = "上传的文件合计太大：请压缩图片或降低扫描分辨率后重新提交。"
MATERIAL_ROWS = 3
"""Material rows of the application page (each may carry one upload)."""


@dataclass
class Hall:
    """What the routes share: settings, the database, Temporal (connected on first use)."""

    settings: Settings
    db: Database
    key: bytes
    connect: Callable[[], Awaitable[Client]]
    documents: DocumentStore
    client: Client | None = None

    async def temporal(self) -> Client:
        """The Temporal client (TemporalUnavailable when Temporal does not answer)."""
        if self.client is None:
            try:
                self.client = await self.connect()
            except RuntimeError as error:  # "Failed client connect: …"
                raise TemporalUnavailable(str(error)) from None
        return self.client

    async def temporal_or_none(self) -> Client | None:
        """The Temporal client, or None when it does not answer (pages that can do without)."""
        try:
            return await self.temporal()
        except TemporalUnavailable:
            return None

    @property
    def sign_in(self) -> SignIn:
        return SignIn(self.db, self.key)


def hall_of(request: Request) -> Hall:
    hall: Hall = request.app.state.hall
    return hall


HallDep = Annotated[Hall, Depends(hall_of)]


class NeedsSignIn(Exception):
    """A page was asked for without a session: the handler redirects to the sign-in page."""


async def visitor(request: Request, hall: HallDep) -> Visitor:
    """The signed-in person; pages redirect, the API answers 401 without a session."""
    found = await visitor_of(hall.db, request.cookies.get(security.SESSION_COOKIE))
    if found is None:
        if request.url.path.startswith("/api"):
            raise HTTPException(401, "请先登录 (sign in first)")
        raise NeedsSignIn
    return found


VisitorDep = Annotated[Visitor, Depends(visitor)]


def require(*roles: str) -> Callable[[Visitor], Awaitable[Visitor]]:
    async def check(who: VisitorDep) -> Visitor:
        if who.role not in roles:
            raise HTTPException(403, "无权访问此页面 (not for this account)")
        return who

    return check


ApplicationId = Annotated[
    str,
    Path(
        pattern=r"^[A-Z]{3}-\d{8}-[0-9A-Z]{6}$",
        max_length=32,
        description="The application ID, e.g. APP-20261123-7K3QF9.",
    ),
]
"""An application ID in a path: anything else is refused before a query is made."""

Applicant = Annotated[Visitor, Depends(require("applicant"))]
ExpertVisitor = Annotated[Visitor, Depends(require("expert"))]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


_NEW_CSRF = "chronic.hall.new_csrf"


def csrf_cookie(request: Request) -> str:
    """The browser's CSRF cookie, made on first sight (set on the response by middleware)."""
    value = request.cookies.get(security.CSRF_COOKIE) or request.scope.get(_NEW_CSRF)
    if not value:
        value = security.new_token()
        request.scope[_NEW_CSRF] = value
    return str(value)


def csrf_token(request: Request) -> str:
    return security.csrf_token(hall_of(request).key, csrf_cookie(request))


async def check_csrf(request: Request, hall: HallDep) -> None:
    """403 unless the request carries the CSRF token of this browser."""
    token = request.headers.get(security.CSRF_HEADER)
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get(security.CSRF_FIELD)
        token = field if isinstance(field, str) else None
    if not security.csrf_valid(hall.key, request.cookies.get(security.CSRF_COOKIE), token):
        raise HTTPException(403, "表单已失效，请刷新页面后重试 (CSRF token missing or wrong)")


Csrf = Depends(check_csrf)


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https"


def set_hall_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """A cookie of the whole hall (the session, the CSRF token): HttpOnly, SameSite=Lax,
    Secure whenever the page came over HTTPS."""
    response.set_cookie(
        name, value, httponly=True, samesite="lax", secure=secure_cookies(request), path="/"
    )


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    set_hall_cookie(request, response, security.SESSION_COOKIE, token)


class HallHeaders:
    """Every answer's security headers and the new CSRF cookie; a body larger than
    ``largest_body`` is refused (413) before it is read.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware``
    runs each request through a task group and a memory stream, a fixed cost on every page.
    """

    def __init__(self, app: ASGIApp, largest_body: int) -> None:
        self.app = app
        self.largest_body = largest_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.largest_body:
            refused: Response = JSONResponse(
                {"detail": TOO_LARGE}, status_code=413, headers={"Connection": "close"}
            )
            if not request.url.path.startswith("/api"):
                refused = templates.TemplateResponse(
                    request,
                    "error.html",
                    {"message": TOO_LARGE, "csrf": "", "who": None},
                    status_code=413,
                )
            await refused(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                new = scope.get(_NEW_CSRF)
                if new and not request.cookies.get(security.CSRF_COOKIE):
                    cookie = Response()
                    set_hall_cookie(request, cookie, security.CSRF_COOKIE, new)
                    headers.append("set-cookie", cookie.headers["set-cookie"])
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("Cache-Control", "no-store")
                if not request.url.path.startswith("/api/docs"):  # Swagger UI: its CDN
                    headers.setdefault("Content-Security-Policy", CSP)
            await send(message)

        await self.app(scope, receive, with_headers)


def routers() -> list[APIRouter]:
    """Every router of the hall's pages and API (the tests check each route's door)."""
    from chronic.hall import api, desk, filing, links, office, pages, totp

    return [
        pages.router,
        api.router,
        links.router,
        office.pages,
        office.api,
        desk.pages,
        desk.api,
        filing.pages,
        filing.api,
        totp.pages,
        totp.api,
    ]


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    connect: Callable[[], Awaitable[Client]] | None = None,
) -> FastAPI:
    """The hall. Without arguments: the process's settings, database and Temporal."""
    settings = settings or get_settings()
    own_db = db is None
    database = db or Database.for_hall(settings)

    async def default_connect() -> Client:
        from chronic.temporal_client import connect as temporal_connect

        return await temporal_connect()

    hall = Hall(
        settings,
        database,
        security.hall_key(settings),
        connect or default_connect,
        DocumentStore.from_settings(settings),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if own_db:
            await database.dispose()

    app = FastAPI(
        title="chronic 网上服务大厅 API",
        description="The online service hall's JSON API: applicants' applications and "
        "timelines, experts' review tasks. Sign in first (session cookie); every POST needs "
        "the X-CSRF-Token header (GET /api/csrf).",
        version="1",
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.hall = hall

    @app.exception_handler(NeedsSignIn)
    async def to_sign_in(request: Request, error: NeedsSignIn) -> Response:
        # A page asked for (an SMS link, a bookmark) is where the sign-in lands afterwards.
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        back = security.safe_next(wanted) if request.method == "GET" else None
        to = f"/login?{urlencode({'next': back})}" if back else "/login"
        return RedirectResponse(to, status_code=303)

    @app.exception_handler(TemporalUnavailable)
    @app.exception_handler(RPCError)
    async def unavailable(request: Request, error: Exception) -> Response:
        logger.warning("Temporal did not answer for %s: %s", request.url.path, error)
        return await plain_error(request, HTTPException(503, UNAVAILABLE))

    @app.exception_handler(RequestValidationError)
    async def not_a_page(request: Request, error: RequestValidationError) -> Response:
        if request.url.path.startswith("/api"):
            return await request_validation_exception_handler(request, error)
        return await plain_error(request, HTTPException(404, "没有找到该页面。"))

    @app.exception_handler(HTTPException)
    async def plain_error(request: Request, error: HTTPException) -> Response:
        if request.url.path.startswith("/api"):
            return JSONResponse({"detail": error.detail}, status_code=error.status_code)
        return templates.TemplateResponse(
            request,
            "error.html",
            {"message": error.detail, "csrf": csrf_token(request), "who": None},
            status_code=error.status_code,
        )

    # A form with every material row at the size limit, and room for the fields: anything
    # larger is refused before its body is read (and spooled to disk).
    largest_body = MATERIAL_ROWS * settings.document_max_bytes + 1024 * 1024

    app.add_middleware(HallHeaders, largest_body=largest_body)

    for router in routers():
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app

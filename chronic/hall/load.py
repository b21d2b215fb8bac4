"""The hall's load check: many signed-in sessions on the inbox and timeline pages at once.

``chronic hall-load`` (and the test of the same name) opens sessions straight in the database
for applicants who have applications and for expert accounts — a development stack only (the
SMS gateway ``log``), since it skips the sign-in — then every session asks for its pages
``rounds`` times, all sessions at once (after one untimed round), and the page times are
reported as p50 / p95 / max.
The sessions are ended afterwards.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import zip_longest

import httpx
from sqlmodel import col, delete, select

from chronic.db import Database
from chronic.hall.security import SESSION_COOKIE, token_hash
from chronic.hall.sessions import open_session
from models.tables import Application, HallSession, HallUser


@dataclass(frozen=True)
class Visit:
    """One session and the pages it asks for."""

    token: str
    pages: tuple[str, ...]


@dataclass
class LoadReport:
    sessions: int
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def line(self, page: str) -> str:
        values = sorted(self.times[page])
        p50 = statistics.median(values) * 1000
        p95 = values[max(0, round(0.95 * len(values)) - 1)] * 1000
        return (
            f"{page:<10} {len(values):>6} requests  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
            f"max {values[-1] * 1000:6.1f} ms"
        )


async def open_visits(db: Database, sessions: int) -> list[Visit]:
    """Sessions for applicants with applications and for enabled expert accounts, taking one
    of each in turn."""
    async with db.session() as session:
        applications = (
            await session.exec(
                select(Application.person_id, Application.id).order_by(
                    col(Application.submitted_at).desc()
                )
            )
        ).all()
        experts = (
            await session.exec(
                select(HallUser.id).where(
                    HallUser.role == "expert", col(HallUser.disabled).is_(False)
                )
            )
        ).all()
    people: dict[int, str] = {}
    for person_id, application_id in applications:
        people.setdefault(person_id, application_id)
    applicants = [("applicant", p, a) for p, a in people.items()]
    accounts = [("expert", user_id, "") for user_id in experts if user_id is not None]
    # Alternately, so a stack with many applicants still puts experts on the inbox.
    kinds: list[tuple[str, int, str]] = [
        kind for pair in zip_longest(applicants, accounts) for kind in pair if kind is not None
    ]
    if not kinds:
        raise LookupError("no applicant with an application and no expert account to sign in")
    visits = []
    for n in range(sessions):
        kind, who, application_id = kinds[n % len(kinds)]
        if kind == "applicant":
            token = await open_session(db, person_id=who)
            visits.append(Visit(token, ("/me", f"/me/applications/{application_id}")))
        else:
            token = await open_session(db, user_id=who)
            visits.append(Visit(token, ("/expert",)))
    return visits


async def end_visits(db: Database, visits: list[Visit]) -> None:
    async with db.session() as session:
        await session.exec(
            delete(HallSession).where(
                col(HallSession.token_hash).in_([token_hash(v.token) for v in visits])
            )
        )


def _kind(path: str) -> str:
    return "timeline" if path.startswith("/me/applications/") else path.strip("/") or "home"


async def run_load(
    base_url: str,
    visits: list[Visit],
    rounds: int,
    transport: httpx.AsyncBaseTransport | None = None,
    pause: float = 0.0,
) -> LoadReport:
    """Every visit asks for its pages ``rounds`` times, all visits at once.

    ``pause`` is a person's pace: the seconds a visit reads a page before asking for the next
    (each pause drawn between half and one and a half times it, and the visits' first pages
    spread over one pause, so they do not ask in step); 0 asks flat out, which measures the
    hall saturated rather than a room of people using it.

    The browsers are made first (one TLS context for all: each would load the CA bundle,
    tens of milliseconds that stall every request in flight), and each visit asks for its
    pages once, untimed, before the timed rounds: the first requests import the client's
    and the hall's lazily loaded code, which is not what a page costs.
    """
    report = LoadReport(sessions=len(visits))
    tls = ssl.create_default_context()
    browsers = [
        httpx.AsyncClient(
            base_url=base_url,
            cookies={SESSION_COOKIE: visit.token},
            transport=transport,
            verify=tls,
            timeout=30,
            follow_redirects=False,
        )
        for visit in visits
    ]

    async def warm(browser: httpx.AsyncClient, visit: Visit) -> None:
        for path in visit.pages:
            await browser.get(path)

    pace = random.Random(len(visits))  # the same pauses for the same sessions, run after run

    async def one(browser: httpx.AsyncClient, visit: Visit) -> None:
        if pause:
            await asyncio.sleep(pace.uniform(0, pause))
        for _ in range(rounds):
            for path in visit.pages:
                if pause:
                    await asyncio.sleep(pace.uniform(0.5 * pause, 1.5 * pause))
                started = time.perf_counter()
                response = await browser.get(path)
                report.times[_kind(path)].append(time.perf_counter() - started)
                report.requests += 1
                if response.status_code != 200:
                    report.errors += 1

    try:
        await asyncio.gather(*(warm(b, v) for b, v in zip(browsers, visits, strict=True)))
        started = time.perf_counter()
        await asyncio.gather(*(one(b, v) for b, v in zip(browsers, visits, strict=True)))
        report.seconds = time.perf_counter() - started
    finally:
        for browser in browsers:
            await browser.aclose()
    return report

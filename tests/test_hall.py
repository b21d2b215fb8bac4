"""The online service hall over HTTP, against a real dev server, Postgres and the workers.

The hall is the app ``chronic hall`` serves, called through its HTTP interface (httpx on the
ASGI app); its Temporal client is the session's dev server, its database a copy of the seeded
world, and the product's five workers run in this process, so a sign-in code really goes out
through an ``SmsDelivery`` into the outbox, and an expert's click is the workflow's Update.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import uvicorn
from axe_playwright_python.async_playwright import Axe
from fastapi.routing import APIRoute
from PIL import Image
from playwright.async_api import Page, ViewportSize, async_playwright
from sqlmodel import col, select, update
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from chronic.certificate import pdf_text
from chronic.cli import app
from chronic.db import Database
from chronic.hall import cases, links, security
from chronic.hall.accounts import Role, add_user
from chronic.hall.app import create_app, routers
from chronic.hall.load import end_visits, open_visits, run_load
from chronic.settings import Settings
from chronic.sms.sealed import unseal
from chronic.submission import StartDeferred, submit
from models.domain import InsuranceType, SmsStatus
from models.messages import AcceptOffer, Decide, HospitalOpinion, OfficeAccept, OfficeConfirm
from models.notifications import SmsTemplate
from models.tables import (
    Application,
    AuditEvent,
    Expert,
    HallSession,
    HallThrottle,
    Hospital,
    InsuredPerson,
    Material,
    SignInCode,
    SmsOutbox,
)
from tests import support
from tests.fixtures import free_port
from tests.fixtures.scans import ELF_EXECUTABLE, pdf_scan, photo
from tests.fixtures.temporal import running_workers
from tests.test_cli import _UPDATE_EVENTS
from tests.test_regions import ERJIA, TONGJI, wuhan_form, wuhan_register
from workflows.application import ApplicationWorkflow
from workflows.benefit import BenefitWorkflow

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


@dataclass
class Hall:
    env: WorkflowEnvironment
    db: Database
    settings: Settings
    started: datetime

    @property
    def client(self) -> Client:
        return self.env.client

    def browser(self, temporal_down: bool = False) -> httpx.AsyncClient:
        """A new browser: its own cookies (to a hall whose Temporal does not answer)."""
        app = create_app(
            self.settings, db=self.db, connect=self._refused if temporal_down else self._connect
        )
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hall.test"
        )

    async def _connect(self) -> Client:
        return self.env.client

    async def _refused(self) -> Client:
        raise RuntimeError("Failed client connect: connection refused")

    async def person_id(self, id_number: str) -> int:
        async with self.db.session() as session:
            found = await session.scalar(
                select(InsuredPerson.id).where(InsuredPerson.id_number == id_number)
            )
        assert found is not None
        return found

    async def apply(self, id_number: str, disease: str = "DM") -> str:
        return await submit(
            support.form(id_number, disease), client=self.client, db=self.db, settings=self.settings
        )

    async def code_sms(self, person_id: int, after: int = 0, within: float = 30) -> SmsOutbox:
        """The person's latest sign-in SMS once sent (newer than outbox row ``after``)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            async with self.db.session() as session:
                rows = (
                    await session.exec(
                        select(SmsOutbox)
                        .where(
                            SmsOutbox.template == SmsTemplate.SIGN_IN_CODE.value,
                            col(SmsOutbox.id) > after,
                            SmsOutbox.status == SmsStatus.SENT,
                        )
                        .order_by(col(SmsOutbox.id).desc())
                    )
                ).all()
            mine = [r for r in rows if r.params.get("person_id") == str(person_id)]
            if mine:
                return mine[0]
            assert asyncio.get_running_loop().time() < deadline, "no sign-in SMS sent"
            await asyncio.sleep(0.2)

    async def audit(self, action: str) -> list[AuditEvent]:
        async with self.db.session() as session:
            return list(
                (await session.exec(select(AuditEvent).where(AuditEvent.action == action))).all()
            )

    async def update_events(self, application_id: str) -> list[object]:
        history = await self.client.get_workflow_handle(application_id).fetch_history()
        return [e.event_type for e in history.events if e.event_type in _UPDATE_EVENTS]


@pytest.fixture
async def hall(
    dev_server: WorkflowEnvironment, seeded_database: Database, tmp_path: Path
) -> AsyncIterator[Hall]:
    settings = Settings(state_dir=tmp_path)
    started = datetime.now(UTC)
    async with running_workers(dev_server.client, seeded_database, settings):
        yield Hall(dev_server, seeded_database, settings, started)
        await support.terminate_started_since(dev_server.client, started)


async def csrf_of(browser: httpx.AsyncClient, path: str = "/login") -> str:
    page = await browser.get(path)
    found = _CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def _next(value: str | None) -> dict[str, str]:
    return {} if value is None else {"next": value}


async def ask_code(
    browser: httpx.AsyncClient, id_number: str, next: str | None = None
) -> httpx.Response:
    token = await csrf_of(browser)
    return await browser.post(
        "/login/code", data={"csrf_token": token, "id_number": id_number, **_next(next)}
    )


async def enter_code(
    browser: httpx.AsyncClient, id_number: str, code: str, next: str | None = None
) -> httpx.Response:
    token = await csrf_of(browser)
    return await browser.post(
        "/login/verify",
        data={"csrf_token": token, "id_number": id_number, "code": code, **_next(next)},
    )


async def sign_in_applicant(hall: Hall, browser: httpx.AsyncClient, id_number: str) -> None:
    person = await hall.person_id(id_number)
    asked = await ask_code(browser, id_number)
    assert asked.status_code == 200, asked.text
    sms = await hall.code_sms(person)
    signed_in = await enter_code(browser, id_number, unseal(sms.params["code"]))
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/me"


async def sign_in_staff(
    browser: httpx.AsyncClient, username: str, next: str | None = None
) -> httpx.Response:
    token = await csrf_of(browser)
    return await browser.post(
        "/login/staff",
        data={"csrf_token": token, "username": username, "password": PASSWORD, **_next(next)},
    )


async def sent_to_sign_in(browser: httpx.AsyncClient, link: str, page: str) -> str:
    """An SMS link opened without a session: to ``page``, then to the sign-in page, which
    carries ``page`` along; returns the ``next`` the sign-in page's forms hold."""
    first = await browser.get(link)
    assert first.status_code == 303 and first.headers["location"] == page
    second = await browser.get(page)
    assert second.status_code == 303
    assert second.headers["location"] == "/login?" + urlencode({"next": page})
    login = await browser.get(second.headers["location"])
    found = re.search(r'name="next" value="([^"]*)"', login.text)
    assert found and found.group(1) == page
    return found.group(1)


@pytest.mark.parametrize(
    "wanted",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/login",
        "",
    ],
)
def test_only_a_local_path_is_honoured_after_the_sign_in(wanted: str) -> None:
    assert security.safe_next(wanted) is None
    assert security.safe_next("/me/applications/APP-20261123-7K3QF9?x=1") is not None


async def test_an_applicant_signs_in_with_the_code_and_sees_only_their_own_applications(
    hall: Hall, caplog: pytest.LogCaptureFixture, configured: Callable[..., None]
) -> None:
    caplog.set_level(logging.DEBUG)
    own = await hall.apply(support.WANG)
    other = await hall.apply(support.LI)
    person = await hall.person_id(support.WANG)

    async with hall.browser() as browser:
        # The SMS link, opened without a session, is where the sign-in leads.
        wanted = await sent_to_sign_in(browser, f"/a/{own}", f"/me/applications/{own}")
        asked = await ask_code(browser, support.WANG, next=wanted)
        assert asked.status_code == 200
        assert "验证码已发送至登记的手机号码" in asked.text
        assert f'name="next" value="{wanted}"' in asked.text
        sms = await hall.code_sms(person)

        # The code is in no row nor log line in clear: sealed in the outbox, masked in its
        # text, a keyed hash in sign_in_code.
        code = unseal(sms.params["code"])
        assert re.fullmatch(r"\d{6}", code)
        assert sms.params["code"].startswith("sealed:") and code not in sms.params["code"]
        assert "验证码******" in sms.params["text"] and code not in sms.params["text"]
        async with hall.db.session() as session:
            stored = (
                await session.exec(select(SignInCode).where(SignInCode.person_id == person))
            ).one()
        assert code not in stored.code_hash
        assert code not in caplog.text and support.WANG not in caplog.text
        # On a development stack (log gateway) the desk reads it with `chronic sms code`.
        configured(temporal=hall.client.service_client.config.target_host, database_url=hall.db.url)
        shown = await asyncio.to_thread(CliRunner().invoke, app, ["sms", "code", str(sms.id)])
        assert shown.exit_code == 0 and shown.stdout.strip() == code, shown.output

        wrong = "000000" if code != "000000" else "111111"
        refused = await enter_code(browser, support.WANG, wrong, next=wanted)
        assert refused.status_code == 400 and "验证码错误或已过期" in refused.text
        assert f'name="next" value="{wanted}"' in refused.text

        signed_in = await enter_code(browser, support.WANG, code, next=wanted)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == wanted
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("samesite", "SameSite")

        # The code works once.
        again = await enter_code(browser, support.WANG, code)
        assert again.status_code == 400

        mine = await browser.get("/me")
        assert mine.status_code == 200
        assert own in mine.text and other not in mine.text
        listed = await browser.get("/api/applications")
        assert [a["application_id"] for a in listed.json()] == [own]

        timeline = await browser.get(f"/me/applications/{own}")
        assert timeline.status_code == 200
        assert "提交申请" in timeline.text and "受理审核" in timeline.text
        assert (await browser.get(f"/me/applications/{other}")).status_code == 404
        assert (await browser.get(f"/api/applications/{other}")).status_code == 404
        shown = (await browser.get(f"/api/applications/{own}")).json()
        assert shown["steps"][0]["label"] == "提交申请" and shown["live"] is True

        # An applicant is no expert.
        assert (await browser.get("/expert")).status_code == 403

    [signed] = await hall.audit("hall_sign_in")
    assert signed.actor == f"applicant:#{person}"


async def test_an_approved_applicant_downloads_the_benefit_card_and_nobody_elses(
    hall: Hall,
) -> None:
    own = await hall.apply(support.WANG, "DIAL")  # the instant track: one final review
    handle = hall.client.get_workflow_handle_for(ApplicationWorkflow.run, own)
    offer = await support.pending_offer(handle)
    await handle.execute_update(ApplicationWorkflow.accept, AcceptOffer(expert=offer.expert))
    await handle.execute_update(
        ApplicationWorkflow.decide, Decide(expert=offer.expert, approve=True, opinion="符合")
    )
    assert (await handle.result()).status == "approved"
    other = await hall.apply(support.LI)  # not approved, and not WANG's

    async with hall.browser() as browser:
        await sign_in_applicant(hall, browser, support.WANG)
        timeline = await browser.get(f"/me/applications/{own}")
        assert f"/me/applications/{own}/card.pdf" in timeline.text
        card = await browser.get(f"/me/applications/{own}/card.pdf")
        assert card.status_code == 200 and card.headers["content-type"] == "application/pdf"
        assert card.headers["cache-control"] == "no-store"
        text = pdf_text(card.content)
        assert "门诊慢病卡" in text and support.WANG in text and own in text
        assert (await browser.get(f"/me/applications/{other}/card.pdf")).status_code == 404

        # The applicant changes the designated hospital online, twice a year in Sanmenxia.
        assert 'name="hospital"' in timeline.text
        benefit = hall.client.get_workflow_handle_for(BenefitWorkflow.run, f"benefit-{own}")
        for _ in range(100):  # its workflow reads the register first
            if "records" not in (await benefit.query(BenefitWorkflow.view)).waiting_for:
                break
            await asyncio.sleep(0.1)
        path = f"/me/applications/{own}/hospital"
        for code in ("H02", "H03"):
            token = await csrf_of(browser, f"/me/applications/{own}")
            changed = await browser.post(path, data={"csrf_token": token, "hospital": code})
            assert changed.status_code == 200 and "定点医院已变更为" in changed.text
        token = await csrf_of(browser, f"/me/applications/{own}")
        third = await browser.post(path, data={"csrf_token": token, "hospital": "H04"})
        assert third.status_code == 409 and "allows twice per calendar year" in third.text
        assert (await benefit.query(BenefitWorkflow.view)).designated_hospital_code == "H03"
        no_token = await browser.post(path, data={"hospital": "H04"})
        assert no_token.status_code in (400, 403)
    async with hall.browser() as stranger:
        refused = await stranger.get(f"/me/applications/{own}/card.pdf", follow_redirects=False)
        assert refused.status_code in (303, 401)
    person = await hall.person_id(support.WANG)
    [downloaded] = await hall.audit("hall_card_downloaded")
    assert downloaded.actor == f"applicant:#{person}"
    assert [e.actor for e in await hall.audit("hall_change_hospital")] == [
        f"applicant:#{person}"
    ] * 2


async def test_a_wuhan_applicant_changes_pharmacy_and_hospital_once_a_year_on_page_and_api(
    hall: Hall,
) -> None:
    await wuhan_register(hall.db)  # the register's Wuhan hospitals
    person, _ = await support.insured_person(
        hall.db,
        place="420100",  # one the sign-in's ID number check knows
        born=date(1980, 1, 1),
        sequence=321,
        region="wuhan",
        insurance_type=InsuranceType.RESIDENT,
    )
    own = await submit(
        wuhan_form(person, "CA", TONGJI), client=hall.client, db=hall.db, settings=hall.settings
    )
    handle = hall.client.get_workflow_handle_for(ApplicationWorkflow.run, own)
    await support.eventually(handle, lambda p: "accept or return" in p.waiting_for)
    await handle.execute_update(ApplicationWorkflow.office_accept, OfficeAccept(clerk="clerk:r"))
    await handle.execute_update(
        ApplicationWorkflow.hospital_opinion, HospitalOpinion(hospital=TONGJI, approve=True)
    )
    await support.eventually(handle, lambda p: p.stage == "office_confirmation")
    await handle.execute_update(
        ApplicationWorkflow.office_confirm, OfficeConfirm(clerk="clerk:r", confirm=True)
    )
    assert (await handle.result()).status == "approved"
    benefit = hall.client.get_workflow_handle_for(BenefitWorkflow.run, f"benefit-{own}")
    for _ in range(100):  # its workflow reads the registers first
        if "records" not in (await benefit.query(BenefitWorkflow.view)).waiting_for:
            break
        await asyncio.sleep(0.1)

    async with hall.browser() as browser:
        await sign_in_applicant(hall, browser, person)
        timeline = await browser.get(f"/me/applications/{own}")
        assert 'name="pharmacy"' in timeline.text and "WP02" in timeline.text
        path = f"/me/applications/{own}/pharmacy"
        token = await csrf_of(browser, f"/me/applications/{own}")
        changed = await browser.post(path, data={"csrf_token": token, "pharmacy": "WP02"})
        assert (
            changed.status_code == 200 and "定点药店已变更为 武汉市武昌区康泰药店" in changed.text
        )
        token = await csrf_of(browser, f"/me/applications/{own}")
        again = await browser.post(path, data={"csrf_token": token, "pharmacy": "WP03"})
        # The validator's words, as `chronic benefit change-pharmacy` prints them.
        refusal = f"the designated pharmacy of {own} was already changed once in"
        assert again.status_code == 409 and refusal in again.text
        assert "wuhan allows once per calendar year" in again.text

        # The JSON API: the same door, the hospital counted apart from the pharmacy.
        token = (await browser.get("/api/csrf")).json()["csrf_token"]
        url = f"/api/applications/{own}/designation"
        headers = {"X-CSRF-Token": token}
        done = await browser.post(url, json={"kind": "hospital", "code": ERJIA}, headers=headers)
        assert done.status_code == 200 and "定点医院已变更为" in done.json()["message"]
        more = await browser.post(url, json={"kind": "pharmacy", "code": "WP03"}, headers=headers)
        assert more.status_code == 409 and refusal in more.json()["detail"]
        # The timeline shows the benefit as it stands now, not as it was approved.
        now = (await browser.get(f"/me/applications/{own}")).text
        assert "定点药店：武汉市武昌区康泰药店" in now
        async with hall.db.session() as session:
            erjia = await session.get(Hospital, ERJIA)
        assert erjia is not None and f"定点医院：{erjia.name}" in now
    view = await benefit.query(BenefitWorkflow.view)
    assert (view.pharmacy_code, view.designated_hospital_code) == ("WP02", ERJIA)
    actor = f"applicant:#{await hall.person_id(person)}"
    assert [e.actor for e in await hall.audit("hall_change_pharmacy")] == [actor]
    assert [e.actor for e in await hall.audit("hall_change_hospital")] == [actor]

    # Sanmenxia's form designates no pharmacy: its card page offers no pharmacy change.
    assert not await cases.pharmacies_of(hall.db, "sanmenxia")


async def test_an_expired_code_is_refused_and_guessing_is_stopped(hall: Hall) -> None:
    person = await hall.person_id(support.ZHANG)
    async with hall.browser() as browser:
        assert (await ask_code(browser, support.ZHANG)).status_code == 200
        first = await hall.code_sms(person)
        async with hall.db.session() as session:
            await session.exec(
                update(SignInCode)
                .where(col(SignInCode.person_id) == person)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        expired = await enter_code(browser, support.ZHANG, unseal(first.params["code"]))
        assert expired.status_code == 400 and "验证码错误或已过期" in expired.text

        # A second code within the minute is refused.
        too_soon = await ask_code(browser, support.ZHANG)
        assert too_soon.status_code == 429 and "尝试次数过多" in too_soon.text

        # A minute later: a new code; five wrong guesses kill it, the right one then fails.
        async with hall.db.session() as session:
            await session.exec(
                update(HallThrottle).values(at=datetime.now(UTC) - timedelta(minutes=2))
            )
        assert (await ask_code(browser, support.ZHANG)).status_code == 200
        sms = await hall.code_sms(person, after=first.id or 0)
        code = unseal(sms.params["code"])
        guesses = [f"{n:06d}" for n in range(1, 100) if f"{n:06d}" != code]
        for guess in guesses[:5]:
            assert (await enter_code(browser, support.ZHANG, guess)).status_code == 400
        dead = await enter_code(browser, support.ZHANG, code)
        assert dead.status_code == 400

        # Guessing on: the ID number is locked out for the hour.
        statuses = [
            (await enter_code(browser, support.ZHANG, guess)).status_code for guess in guesses[5:12]
        ]
        assert statuses[-1] == 429
        assert (await browser.get("/me")).status_code == 303  # never signed in


async def test_a_missing_or_forged_csrf_token_is_refused(hall: Hall) -> None:
    async with hall.browser() as browser, hall.browser() as other:
        page = await browser.get("/login")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        csrf_cookie = page.headers["set-cookie"]
        assert "HttpOnly" in csrf_cookie and "samesite=lax" in csrf_cookie.lower()
        token = await csrf_of(browser)
        foreign = await csrf_of(other)  # a real token, of another browser
        for data in ({}, {"csrf_token": "0" * 64}, {"csrf_token": foreign}):
            refused = await browser.post("/login/code", data={"id_number": support.WANG, **data})
            assert refused.status_code == 403, data
            assert "表单已失效" in refused.text
        api = await browser.post("/api/session/code", json={"id_number": support.WANG})
        assert api.status_code == 403
        forged = await browser.post(
            "/api/session/code",
            json={"id_number": support.WANG},
            headers={"X-CSRF-Token": foreign},
        )
        assert forged.status_code == 403
        accepted = await browser.post(
            "/api/session/code", json={"id_number": support.WANG}, headers={"X-CSRF-Token": token}
        )
        assert accepted.status_code == 200
    async with hall.db.session() as session:
        codes = (await session.exec(select(SignInCode))).all()
    assert len(codes) == 1  # only the request with the right token made a code


OPEN = {"/login", "/", "/api/csrf"}
SIGN_IN = {
    "/login/code",
    "/login/verify",
    "/login/staff",
    "/login/totp",  # the second factor of a password that was right (a pending sign-in)
    "/api/session/code",
    "/api/session",
    "/api/session/staff",
}


async def test_every_page_and_api_route_refuses_a_visitor_without_a_session(hall: Hall) -> None:
    async with hall.browser() as browser:
        token = await csrf_of(browser)
        # Every router the hall serves (chronic.hall.app.routers): a new route is checked too.
        routes = [r for router in routers() for r in router.routes if isinstance(r, APIRoute)]
        checked = 0
        for route in routes:
            if route.path in OPEN or route.path in SIGN_IN:
                continue
            path = route.path.format(
                application_id="APP-20261123-7K3QF9",
                action="accept",
                sha256="a" * 64,
                number=1,
                code="E001",
            )
            for method in sorted(route.methods or ()):
                response = await browser.request(
                    method,
                    path,
                    headers={"X-CSRF-Token": token},
                    data={"csrf_token": token} if not path.startswith("/api") else None,
                    json={} if path.startswith("/api") and method == "POST" else None,
                )
                if path.startswith("/api"):
                    assert response.status_code == 401, (method, path, response.text)
                elif route in links.router.routes:  # an SMS link: to its page, which asks
                    page = response.headers["location"]
                    assert page.startswith(("/me/", "/expert/")), (path, page)
                    response = await browser.get(page)
                    assert response.status_code == 303, (path, page)
                    assert response.headers["location"] == "/login?" + urlencode({"next": page})
                else:
                    assert response.status_code == 303, (method, path, response.text)
                    back = "/login?" + urlencode({"next": path}) if method == "GET" else "/login"
                    assert response.headers["location"] == back
                checked += 1
        assert checked >= 60


async def test_an_expert_acts_on_their_own_task_and_cannot_open_another_experts(
    hall: Hall,
) -> None:
    app_id = await hall.apply(support.WANG)
    handle = hall.client.get_workflow_handle_for(ApplicationWorkflow.run, app_id)
    offer = await support.pending_offer(handle)
    async with hall.db.session() as session:
        others = (await session.exec(select(Expert.code).where(Expert.code != offer.expert))).all()
        other = others[0]
        await add_user(session, offer.expert, Role.EXPERT, PASSWORD, expert_code=offer.expert)
        await add_user(session, other, Role.EXPERT, PASSWORD, expert_code=other)

    async with hall.browser() as intruder:
        # An open redirect through the sign-in leads home instead.
        for hostile in ("https://evil.example", "//evil.example"):
            login = await intruder.get("/login?" + urlencode({"next": hostile}))
            assert 'name="next"' not in login.text
            signed_in = await sign_in_staff(intruder, other, next=hostile)
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/expert"
        assert (await intruder.get(f"/expert/tasks/{app_id}")).status_code == 404
        assert (await intruder.get(f"/api/expert/tasks/{app_id}")).status_code == 404
        token = await csrf_of(intruder, "/expert")
        refused = await intruder.post(f"/expert/tasks/{app_id}/accept", data={"csrf_token": token})
        assert refused.status_code == 409
        # The validator's own words, as `chronic expert accept` prints them.
        assert f"application {app_id} is not offered to {other}" in refused.text
        api = await intruder.post(
            f"/api/expert/tasks/{app_id}/accept", json={}, headers={"X-CSRF-Token": token}
        )
        assert api.status_code == 409
        assert api.json()["detail"] == f"application {app_id} is not offered to {other}"
        assert await hall.update_events(app_id) == []
        # An applicant's page is not an expert's.
        assert (await intruder.get("/me")).status_code == 403

    async with hall.browser() as expert:
        # The SMS link to the task, opened without a session, lands on the task once signed in.
        wanted = await sent_to_sign_in(expert, f"/t/{app_id}", f"/expert/tasks/{app_id}")
        signed_in = await sign_in_staff(expert, offer.expert, next=wanted)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == wanted
        inbox = await _inbox_with(expert, app_id)
        assert "待受理" in inbox.text and "剩余" in inbox.text
        task = await expert.get(f"/expert/tasks/{app_id}")
        assert task.status_code == 200
        assert support.WANG not in task.text and "13803981234" not in task.text
        assert "测试" not in task.text  # the applicant's name of support.form
        # Submitted by digest only (the scans are kept elsewhere): said so, not "not yours".
        digest = (await expert.get(f"/api/expert/tasks/{app_id}")).json()["documents"][0]["sha256"]
        unstored = await expert.get(f"/expert/tasks/{app_id}/documents/{digest}")
        assert unstored.status_code == 404 and "没有上传电子文件" in unstored.text
        token = await csrf_of(expert, f"/expert/tasks/{app_id}")
        accepted = await expert.post(f"/expert/tasks/{app_id}/accept", data={"csrf_token": token})
        assert accepted.status_code == 200 and "已受理" in accepted.text
        listed = (await expert.get("/api/expert/tasks")).json()
        assert [t["status"] for t in listed if t["application_id"] == app_id] == ["accepted"]
        rejected = await expert.post(
            f"/api/expert/tasks/{app_id}/reject", json={"text": ""}, headers={"X-CSRF-Token": token}
        )
        assert rejected.status_code == 409  # the validator: a rejection needs an opinion
        approved = await expert.post(
            f"/api/expert/tasks/{app_id}/approve",
            json={"text": "符合认定标准"},
            headers={"X-CSRF-Token": token},
        )
        assert approved.status_code == 200, approved.text
    progress = await support.eventually(
        handle,
        lambda p: any(d.expert == offer.expert for d in p.decisions),
    )
    assert progress.decisions[0].decision == "approve"
    actions = {(e.action, e.actor) for e in await hall.audit("hall_accept")}
    assert actions == {("hall_accept", f"hall:{offer.expert}")}
    assert [e.actor for e in await hall.audit("hall_approve")] == [f"hall:{offer.expert}"]


async def _inbox_with(
    browser: httpx.AsyncClient, app_id: str, within: float = 15
) -> httpx.Response:
    """The inbox page once it lists ``app_id`` (visibility is eventually consistent)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        page = await browser.get("/expert")
        assert page.status_code == 200
        if app_id in page.text:
            return page
        assert asyncio.get_running_loop().time() < deadline, page.text
        await asyncio.sleep(0.3)


async def test_the_openapi_document_lists_the_api_and_no_page(hall: Hall) -> None:
    async with hall.browser() as browser:
        document = (await browser.get("/api/openapi.json")).json()
    paths = set(document["paths"])
    assert {
        "/api/session/code",
        "/api/session",
        "/api/applications",
        "/api/applications/{application_id}",
        "/api/expert/tasks",
        "/api/expert/tasks/{application_id}/{action}",
        "/api/documents",
        "/api/applications/{application_id}/resubmission",
        "/api/expert/tasks/{application_id}/documents/{sha256}/pages/{number}",
    } <= paths
    assert all(path.startswith("/api/") for path in paths), paths


async def test_accounts_take_a_prompted_password_and_disabling_one_ends_its_sessions(
    hall: Hall, configured: Callable[..., None]
) -> None:
    configured(temporal=hall.client.service_client.config.target_host, database_url=hall.db.url)
    runner = CliRunner()

    def cli(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input)

    # Typed twice; a mismatch or a short password is refused and nothing is made.
    mismatch = await asyncio.to_thread(
        cli, "user", "add", "E001", "--expert", "E001", input=f"{PASSWORD}\nother one!!\n"
    )
    assert mismatch.exit_code != 0
    short = await asyncio.to_thread(
        cli, "user", "add", "E001", "--expert", "E001", input="short\nshort\n"
    )
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    added = await asyncio.to_thread(
        cli, "user", "add", "E001", "--expert", "E001", input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert added.exit_code == 0, added.output
    assert PASSWORD not in added.output

    enrolled = await asyncio.to_thread(
        cli,
        "expert",
        "enroll",
        "E900",
        "--name",
        "周医生",
        "--hospital",
        "H02",
        "--title",
        "senior",
        "--categories",
        "endocrine",
        "--account",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert enrolled.exit_code == 0, enrolled.output
    assert "hall account E900 opened" in enrolled.stdout

    async with hall.browser() as browser:
        assert (await sign_in_staff(browser, "E900")).status_code == 303
        assert (await browser.get("/api/me")).json()["expert_code"] == "E900"
        disabled = await asyncio.to_thread(cli, "user", "disable", "E900")
        assert disabled.exit_code == 0, disabled.output
        assert (await browser.get("/api/me")).status_code == 401
        refused = await sign_in_staff(browser, "E900")
        assert refused.status_code == 400 and "用户名或密码错误" in refused.text
    actions = [e.actor for e in await hall.audit("hall_user_added")]
    assert len(actions) == 2 and all(a.startswith("operator:") for a in actions)


async def test_without_its_process_the_timeline_shows_the_row_and_signing_out_ends_the_session(
    hall: Hall,
) -> None:
    with pytest.raises(StartDeferred) as deferred:
        await submit(support.form(support.ZHANG), client=None, db=hall.db, settings=hall.settings)
    app_id = deferred.value.application_id
    async with hall.browser() as browser:
        await sign_in_applicant(hall, browser, support.ZHANG)
        page = await browser.get(f"/me/applications/{app_id}")
        assert page.status_code == 200
        assert "办理系统暂未响应" in page.text and "已提交" in page.text
        assert (await browser.get(f"/api/applications/{app_id}")).json()["live"] is False

        token = await csrf_of(browser, "/me")
        out = await browser.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert (await browser.get("/me")).status_code == 303
        assert (await browser.get("/api/applications")).status_code == 401


async def test_when_temporal_does_not_answer_pages_say_so_and_the_timeline_shows_the_row(
    hall: Hall,
) -> None:
    app_id = await hall.apply(support.LI)
    async with hall.browser() as browser, hall.browser(temporal_down=True) as cut_off:
        await sign_in_applicant(hall, browser, support.LI)
        cut_off.cookies = browser.cookies
        page = await cut_off.get(f"/me/applications/{app_id}")
        assert page.status_code == 200 and "办理系统暂未响应" in page.text
        token = await csrf_of(cut_off)
        asked = await cut_off.post(
            "/login/code", data={"csrf_token": token, "id_number": support.LI}
        )
        assert asked.status_code == 503 and "办理系统暂时无法访问" in asked.text
    async with hall.db.session() as session:
        await add_user(session, "E001", Role.EXPERT, PASSWORD, expert_code="E001")
    async with hall.browser(temporal_down=True) as expert:
        assert (await sign_in_staff(expert, "E001")).status_code == 303
        inbox = await expert.get("/expert")
        assert inbox.status_code == 503 and "办理系统暂时无法访问" in inbox.text
        assert (await expert.get("/api/expert/tasks")).status_code == 503


async def test_password_guessing_is_stopped_even_when_the_guesses_come_at_once(
    hall: Hall,
) -> None:
    async with hall.db.session() as session:
        await add_user(session, "E001", Role.EXPERT, PASSWORD, expert_code="E001")
    async with hall.browser() as browser:
        token = await csrf_of(browser)

        async def guess(password: str) -> int:
            answer = await browser.post(
                "/api/session/staff",
                json={"username": "E001", "password": password},
                headers={"X-CSRF-Token": token},
            )
            return answer.status_code

        statuses = await asyncio.gather(*(guess(f"wrong guess {n}") for n in range(14)))
        assert sorted(statuses) == [400] * 10 + [429] * 4
        assert await guess(PASSWORD) == 429  # the right one too, for the next 15 minutes
        assert (await browser.get("/api/me")).status_code == 401


HOSTILE = (
    "",
    " ",
    "A" * 5000,
    "../../etc/passwd",
    "APP-20261123-7K3QF9",
    "'; DROP TABLE application;--",
    "\x00",
    "%00",
    "😀" * 10,
    support.WANG,
    "<script>alert(1)</script>",
    "１２３４５６",
    "null",
)
"""Inputs a careless or hostile client sends, for every path parameter and string field."""


def _filled(path: str, value: str) -> str:
    """``path`` with ``value`` in every parameter but ``action`` (an existing action)."""
    return re.sub(
        r"\{(\w+)\}", lambda m: "accept" if m[1] == "action" else quote(value, safe=""), path
    )


async def test_no_api_route_answers_a_hostile_input_with_a_server_error(hall: Hall) -> None:
    """Every operation of the OpenAPI document, as an applicant, an expert and nobody, with
    each hostile value in every path parameter and every string field of its body."""
    await hall.apply(support.WANG)
    async with hall.db.session() as session:
        await add_user(session, "E001", Role.EXPERT, PASSWORD, expert_code="E001")
    async with hall.browser() as applicant, hall.browser() as expert, hall.browser() as nobody:
        await sign_in_applicant(hall, applicant, support.WANG)
        assert (await sign_in_staff(expert, "E001")).status_code == 303
        document = (await nobody.get("/api/openapi.json")).json()
        tried = 0
        for browser in (applicant, expert, nobody):
            token = await csrf_of(browser)
            for path, operations in document["paths"].items():
                for method, operation in operations.items():
                    body = operation.get("requestBody", {}).get("content", {})
                    schema = body.get("application/json", {}).get("schema", {})
                    if "$ref" in schema:
                        name = schema["$ref"].rsplit("/", 1)[-1]
                        schema = document["components"]["schemas"][name]
                    fields = [
                        k
                        for k, v in schema.get("properties", {}).items()
                        if v.get("type") == "string"
                    ]
                    for value in HOSTILE:
                        url = _filled(path, value)
                        response = await browser.request(
                            method.upper(),
                            url,
                            json={f: value for f in fields} if body else None,
                            headers={"X-CSRF-Token": token},
                        )
                        tried += 1
                        assert response.status_code < 500, (method, url, response.text[:300])
                        if response.content:  # a redirect of a trailing slash has none
                            assert response.headers["content-type"] == "application/json", url
        assert tried > 300


# ---- applying with scans, and the expert who reads them ---------------------------------------


def _apply_fields(token: str, **fields: str) -> dict[str, str]:
    issued = (date.today() - timedelta(days=20)).isoformat()
    return {
        "csrf_token": token,
        "disease_code": "DM",
        "mobile": "13803981234",
        "case_number": "BA-2026-118",
        "diagnosing_hospital": "H01",
        "designated_hospital": "H05",
        "kind_0": "diagnosis_certificate",
        "hospital_0": "H01",
        "issued_on_0": issued,
        "kind_1": "lab_result",
        "hospital_1": "H01",
        "issued_on_1": issued,
        **fields,
    }


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"{name} not kept in the page"
    return found.group(1)


async def _applied_with_scans(hall: Hall, browser: httpx.AsyncClient) -> tuple[str, bytes, bytes]:
    """The applicant (LI) applies in the hall: first with a bad mobile, an executable renamed
    .pdf and an oversized file, then with those fixed; returns the application, its PDF and
    its photo."""
    scan, jpeg = pdf_scan(2), photo("JPEG")
    await sign_in_applicant(hall, browser, support.LI)
    form = await browser.get("/me/apply")
    assert form.status_code == 200 and "申请门诊慢特病认定" in form.text
    token = await csrf_of(browser, "/me/apply")
    oversized = b"%PDF-1.7\n" + bytes(hall.settings.document_max_bytes)
    refused = await browser.post(
        "/me/apply",
        data=_apply_fields(token, mobile="1380398123", case_number="", kind_2="exam_report"),
        files={
            "file_0": ("王秀兰诊断证明.pdf", scan, "application/pdf"),
            "file_1": ("report.pdf", ELF_EXECUTABLE, "application/pdf"),
            "file_2": ("ct.pdf", oversized, "application/pdf"),
        },
    )
    assert refused.status_code == 400, refused.text
    page = refused.text
    assert "申请未提交，请修改以下" in page
    assert "手机号码：不是能接收短信的大陆手机号码：请填写 11 位手机号码" in page
    assert "病案号：不能为空" in page
    assert "第2份材料的文件：文件不是 PDF、JPG 或 PNG 格式（按文件内容判断，与文件名无关）" in page
    assert "第3份材料的文件：文件太大，每份材料不能超过 10 MB：请压缩图片" in page
    # Nothing typed or uploaded is lost.
    assert 'value="1380398123"' in page and "已上传：王秀兰诊断证明.pdf（2 页）" in page
    assert _hidden(page, "sha256_0") == hashlib.sha256(scan).hexdigest()
    assert 'value="lab_result" selected' in page
    async with hall.db.session() as session:
        assert (
            await session.exec(
                select(Application).where(Application.person_id == await hall.person_id(support.LI))
            )
        ).all() == []

    token = await csrf_of(browser, "/me/apply")
    submitted = await browser.post(
        "/me/apply",
        data=_apply_fields(
            token,
            sha256_0=_hidden(page, "sha256_0"),
            name_0=_hidden(page, "name_0"),
            pages_0=_hidden(page, "pages_0"),
        ),
        files={"file_1": ("IMG_2031.jpg", jpeg, "image/jpeg")},
    )
    assert submitted.status_code == 200, submitted.text
    assert "申请已提交" in submitted.text
    found = re.search(r"APP-\d{8}-[0-9A-Z]{6}", submitted.text)
    assert found
    return found.group(0), scan, jpeg


async def test_an_applicant_applies_with_a_pdf_and_a_photo_kept_encrypted_by_hash(
    hall: Hall,
) -> None:
    async with hall.browser() as browser:
        app_id, scan, jpeg = await _applied_with_scans(hall, browser)
        listed = await browser.get("/me")
        assert app_id in listed.text
    async with hall.db.session() as session:
        materials = (
            await session.exec(
                select(Material)
                .where(Material.application_id == app_id)
                .order_by(col(Material.position))
            )
        ).all()
    digests = [hashlib.sha256(scan).hexdigest(), hashlib.sha256(jpeg).hexdigest()]
    assert [m.sha256 for m in materials] == digests
    # The name the file had on the phone goes nowhere: it may carry the person's name.
    assert [m.file_ref for m in materials] == ["hall-upload-1", "hall-upload-2"]
    history = await hall.client.get_workflow_handle(app_id).fetch_history()
    assert b"\xe7\x8e\x8b\xe7\xa7\x80" not in history.to_json().encode()  # 王秀 (encrypted anyway)
    kept = [p for p in (hall.settings.state_dir / "documents").rglob("*") if p.is_file()]
    assert len(kept) == 2  # the refused files were not kept
    for file in kept:
        on_disk = file.read_bytes()
        assert scan[:200] not in on_disk and jpeg[:200] not in on_disk
        assert file.name in digests
    uploads = await hall.audit("document_uploaded")
    person = await hall.person_id(support.LI)
    assert {e.detail["sha256"] for e in uploads} == set(digests)
    assert {e.actor for e in uploads} == {f"applicant:#{person}"}

    # A body larger than every row's file at the limit is refused before it is read.
    small = create_app(
        hall.settings.model_copy(update={"document_max_bytes": 1000}),
        db=hall.db,
        connect=hall._connect,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=small), base_url="http://hall.test"
    ) as browser:
        await sign_in_applicant(hall, browser, support.ZHANG)  # one code a minute for LI
        token = await csrf_of(browser, "/me/apply")
        huge = await browser.post(
            "/me/apply",
            data={"csrf_token": token},
            files={"file_0": ("scan.pdf", b"%PDF-1.7\n" + bytes(1_100_000), "application/pdf")},
        )
        assert huge.status_code == 413 and "上传的文件合计太大" in huge.text
        assert len(await hall.audit("document_uploaded")) == 2


async def test_the_form_is_the_regions_and_its_requirements_are_told_in_chinese(
    hall: Hall,
) -> None:
    """Wuhan's form asks the address, district, diagnosis setting, community health centre and
    pharmacy; Jilin's offers the out-of-area box. A Wuhan form without them is refused field by
    field, by the rule `chronic submit` applies."""
    wuhan, _ = await support.insured_person(
        hall.db, place="420106", born=date(1980, 1, 1), sequence=123, region="wuhan"
    )
    jilin, _ = await support.insured_person(
        hall.db, place="220102", born=date(1975, 3, 15), sequence=124, region="jilin"
    )
    async with hall.browser() as browser:
        await sign_in_applicant(hall, browser, wuhan)
        form = (await browser.get("/me/apply")).text
        for asked in (
            "现住址",
            "参保辖区",
            "确诊方式",
            "住院号",
            "定点社区卫生服务中心",
            "定点药店",
        ):
            assert f">{asked}" in form, asked
        assert "异地" not in form
        token = await csrf_of(browser, "/me/apply")
        refused = await browser.post(
            "/me/apply",
            data=_apply_fields(
                token, diagnosing_hospital="", designated_hospital="", hospital_0="", hospital_1=""
            ),
            files={"file_0": ("scan.pdf", pdf_scan(1), "application/pdf")},
        )
        assert refused.status_code == 400
        assert "现住址：本地区的申请表要求填写此项：请补充。" in refused.text
        assert "定点药店：本地区的申请表要求填写此项：请补充。" in refused.text
        assert "确诊医院：请从列表中选择。" in refused.text
        assert "第2份材料的文件：未上传文件：请选择扫描件或照片。" in refused.text
    async with hall.browser() as browser:
        await sign_in_applicant(hall, browser, jilin)
        form = (await browser.get("/me/apply")).text
        assert 'name="out_of_area"' in form and "定点药店" in form and "现住址" not in form


async def test_another_applicant_cannot_name_someone_elses_upload(hall: Hall) -> None:
    async with hall.browser() as browser:
        await sign_in_applicant(hall, browser, support.WANG)
        token = await csrf_of(browser, "/me")
        uploaded = await browser.post(
            "/api/documents",
            files={"file": ("scan.png", photo("PNG"), "image/png")},
            headers={"X-CSRF-Token": token},
        )
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["media_type"] == "image/png"
        theirs = uploaded.json()["sha256"]
        refused = await browser.post(
            "/api/documents",
            files={"file": ("setup.pdf", ELF_EXECUTABLE, "application/pdf")},
            headers={"X-CSRF-Token": token},
        )
        assert (
            refused.status_code == 422 and "不是 PDF、JPG 或 PNG 格式" in refused.json()["detail"]
        )
    async with hall.browser() as browser:
        await sign_in_applicant(hall, browser, support.LI)
        token = await csrf_of(browser, "/me")
        issued = (date.today() - timedelta(days=20)).isoformat()
        material = {"kind": "lab_result", "hospital": "H01", "issued_on": issued, "sha256": theirs}
        body: dict[str, Any] = {
            "disease_code": "DM",
            "mobile": "13803981234",
            "case_number": "BA-9",
            "diagnosing_hospital": "H01",
            "designated_hospital": "H05",
            "materials": [material],
        }
        answer = await browser.post("/api/applications", json=body, headers={"X-CSRF-Token": token})
        assert answer.status_code == 422
        assert answer.json()["detail"] == [
            {
                "field": "materials[0].file",
                "label": "第1份材料的文件",
                "message": "找不到您上传的这份文件：请重新选择文件上传。",
            }
        ]
        # With a scan of their own, the same form is submitted.
        own = await browser.post(
            "/api/documents",
            files={"file": ("c.pdf", pdf_scan(1), "application/pdf")},
            headers={"X-CSRF-Token": token},
        )
        assert own.status_code == 201 and own.json()["pages"] == 1
        material["sha256"] = own.json()["sha256"]
        answer = await browser.post("/api/applications", json=body, headers={"X-CSRF-Token": token})
        assert answer.status_code == 201, answer.text
        app_id = answer.json()["application_id"]
        assert answer.json()["started"] is True
        # Nothing was asked for: the workflow's validator refuses, in Chinese.
        again = await browser.post(
            f"/api/applications/{app_id}/resubmission",
            json={"materials": body["materials"]},
            headers={"X-CSRF-Token": token},
        )
        assert again.status_code == 409 and again.json()["detail"] == "该申请现在不需要补充材料。"
        assert await hall.update_events(app_id) == []


async def test_the_expert_reads_the_scans_inline_and_another_expert_cannot(hall: Hall) -> None:
    async with hall.browser() as applicant:
        app_id, scan, jpeg = await _applied_with_scans(hall, applicant)
        handle = hall.client.get_workflow_handle_for(ApplicationWorkflow.run, app_id)
        offer = await support.pending_offer(handle)
        async with hall.db.session() as session:
            others = (
                await session.exec(select(Expert.code).where(Expert.code != offer.expert))
            ).all()
            other = others[0]
            await add_user(session, offer.expert, Role.EXPERT, PASSWORD, expert_code=offer.expert)
            await add_user(session, other, Role.EXPERT, PASSWORD, expert_code=other)
        pdf_digest = hashlib.sha256(scan).hexdigest()
        document = f"/expert/tasks/{app_id}/documents/{pdf_digest}"

        async with hall.browser() as intruder:
            assert (await sign_in_staff(intruder, other)).status_code == 303
            assert (await intruder.get(document)).status_code == 404
            assert (await intruder.get(f"{document}/pages/1.png")).status_code == 404
            api_page = f"/api/expert/tasks/{app_id}/documents/{pdf_digest}/pages/1"
            assert (await intruder.get(api_page)).status_code == 404
        assert await hall.update_events(app_id) == []
        assert await hall.audit("hall_document_viewed") == []

        async with hall.browser() as expert:
            assert (await sign_in_staff(expert, offer.expert)).status_code == 303
            task = await expert.get(f"/expert/tasks/{app_id}")
            assert document in task.text
            shown = await expert.get(document)
            assert shown.status_code == 200
            assert shown.text.count('<img src="') == 2  # both pages of the PDF
            png = await expert.get(f"{document}/pages/2.png")
            assert png.status_code == 200 and png.headers["content-type"] == "image/png"
            assert png.headers["cache-control"] == "no-store"
            with Image.open(io.BytesIO(png.content)) as image:
                assert image.format == "PNG" and image.width == 1200
            listed = (await expert.get(f"/api/expert/tasks/{app_id}")).json()
            photo_digest = hashlib.sha256(jpeg).hexdigest()
            assert [d["sha256"] for d in listed["documents"]] == [pdf_digest, photo_digest]
            api_photo = await expert.get(
                f"/api/expert/tasks/{app_id}/documents/{photo_digest}/pages/1"
            )
            assert api_photo.status_code == 200 and api_photo.content.startswith(b"\x89PNG")
            assert (await expert.get(f"{document}/pages/3.png")).status_code == 404
            # Not a material of this application: refused even to the task's expert.
            stranger = hashlib.sha256(b"other").hexdigest()
            assert (
                await expert.get(f"/expert/tasks/{app_id}/documents/{stranger}")
            ).status_code == 404

            # The expert asks for more; the applicant brings a PNG, refused first as empty.
            token = await csrf_of(expert, f"/expert/tasks/{app_id}")
            accepted = await expert.post(
                f"/api/expert/tasks/{app_id}/accept", json={}, headers={"X-CSRF-Token": token}
            )
            assert accepted.status_code == 200, accepted.text
            asked = await expert.post(
                f"/api/expert/tasks/{app_id}/request-materials",
                json={"text": "请补充近三个月的糖化血红蛋白化验单"},
                headers={"X-CSRF-Token": token},
            )
            assert asked.status_code == 200, asked.text
        viewed = await hall.audit("hall_document_viewed")
        assert sorted((e.actor, e.detail["sha256"], e.detail["page"]) for e in viewed) == sorted(
            [
                (f"hall:{offer.expert}", pdf_digest, 2),
                (f"hall:{offer.expert}", photo_digest, 1),
            ]
        )

        await support.eventually(handle, lambda p: p.status == "materials_requested")
        timeline = await applicant.get(f"/me/applications/{app_id}")
        assert "补充材料" in timeline.text and 'action="/me/applications/' in timeline.text
        token = await csrf_of(applicant, f"/me/applications/{app_id}")
        issued = (date.today() - timedelta(days=3)).isoformat()
        empty = await applicant.post(
            f"/me/applications/{app_id}/resubmit",
            data={
                "csrf_token": token,
                "kind_0": "lab_result",
                "hospital_0": "H01",
                "issued_on_0": issued,
            },
        )
        assert empty.status_code == 400 and "第1份材料的文件：未上传文件" in empty.text
        assert 'value="lab_result" selected' in empty.text
        added = photo("PNG")
        resubmitted = await applicant.post(
            f"/me/applications/{app_id}/resubmit",
            data={
                "csrf_token": token,
                "kind_0": "lab_result",
                "hospital_0": "H01",
                "issued_on_0": issued,
            },
            files={"file_0": ("hba1c.png", added, "image/png")},
        )
        assert resubmitted.status_code == 200, resubmitted.text
        assert "补充材料已提交（第2轮）" in resubmitted.text
    progress = await support.eventually(handle, lambda p: p.materials_round == 2)
    assert progress.materials_round == 2
    async with hall.db.session() as session:
        second = (
            await session.exec(
                select(Material).where(Material.application_id == app_id, Material.round == 2)
            )
        ).all()
    assert [m.sha256 for m in second] == [hashlib.sha256(added).hexdigest()]


# ---- in a real browser ------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")  # Debian's package, installed by `make test`
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"
PHONE: ViewportSize = {"width": 390, "height": 844}


async def assert_accessible(page: Page, name: str) -> None:
    """axe-core finds no serious or critical violation on ``page`` (the others are printed)."""
    results = await Axe().run(page)
    violations = results.response["violations"]
    for violation in violations:
        print(f"axe {name}: {violation['impact']} {violation['id']}: {violation['help']}")
    serious = [v["id"] for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{name}: {serious}"


@asynccontextmanager
async def served(hall: Hall) -> AsyncIterator[str]:
    """The hall on a free loopback port (uvicorn in this event loop); yields its address."""
    port = free_port()
    app = create_app(hall.settings, db=hall.db, connect=hall._connect)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the hall did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_in_a_browser_the_applicant_follows_two_experts_to_the_approval(
    hall: Hall, tmp_path: Path
) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get)")
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    ARTIFACTS.mkdir(exist_ok=True)
    person = await hall.person_id(support.WANG)
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "诊断证明.pdf").write_bytes(pdf_scan(2))
    (scans / "IMG_0412.jpg").write_bytes(photo("JPEG", (1200, 1600)))
    issued = (date.today() - timedelta(days=20)).isoformat()
    async with served(hall) as url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            # The applicant, on a phone: ID number, the code of the SMS, the timeline.
            phone = await browser.new_page(viewport=PHONE)
            await phone.goto(f"{url}/login")
            await assert_accessible(phone, "login")
            await phone.get_by_label("居民身份证号码").fill(support.WANG)
            await phone.get_by_role("button", name="获取验证码").click()
            await phone.get_by_text("验证码已发送").wait_for()
            sms = await hall.code_sms(person)
            await phone.get_by_label("短信验证码").fill(unseal(sms.params["code"]))
            await phone.screenshot(path=str(ARTIFACTS / "hall-applicant-code.png"))
            await phone.locator("form[action='/login/verify'] button").click()
            await phone.get_by_text("我的申请").wait_for()
            await assert_accessible(phone, "my applications")

            # The application, on the phone: the form, a PDF and a photo of the lab report.
            await phone.get_by_role("link", name="申请门诊慢特病认定").click()
            await phone.get_by_label("申请病种").select_option("DM")
            await phone.get_by_label("病案号").fill("BA-2026-0412")
            await phone.get_by_label("确诊医院").select_option("H01")
            await phone.get_by_label("定点医院（享受待遇的医院）").select_option("H05")
            for slot, (kind, file) in enumerate(
                (("diagnosis_certificate", "诊断证明.pdf"), ("lab_result", "IMG_0412.jpg"))
            ):
                await phone.locator(f"#kind_{slot}").select_option(kind)
                await phone.locator(f"#hospital_{slot}").select_option("H01")
                await phone.locator(f"#issued_on_{slot}").fill(issued)
                await phone.locator(f"#file_{slot}").set_input_files(scans / file)
            await phone.get_by_label("手机号码（接收审核结果短信）").fill("1380398123")
            await assert_accessible(phone, "apply")
            await phone.screenshot(path=str(ARTIFACTS / "hall-applicant-apply.png"), full_page=True)
            await phone.get_by_role("button", name="提交申请").click()
            # A mistyped mobile: told in Chinese, and the two files need not be chosen again.
            await phone.get_by_text("申请未提交，请修改以下 1 处").wait_for()
            await phone.get_by_text("已上传：诊断证明.pdf（2 页）").wait_for()
            await phone.get_by_text("已上传：IMG_0412.jpg（1 页）").wait_for()
            await assert_accessible(phone, "apply refused")
            await phone.screenshot(
                path=str(ARTIFACTS / "hall-applicant-apply-refused.png"), full_page=True
            )
            await phone.get_by_label("手机号码（接收审核结果短信）").fill("13803981234")
            await phone.get_by_role("button", name="提交申请").click()
            await phone.get_by_text("申请已提交").wait_for()
            await phone.screenshot(path=str(ARTIFACTS / "hall-applicant-submitted.png"))
            submitted = await phone.inner_text("main")
            found = re.search(r"APP-\d{8}-[0-9A-Z]{6}", submitted)
            assert found, submitted
            app_id = found.group(0)
            handle = hall.client.get_workflow_handle_for(ApplicationWorkflow.run, app_id)
            await phone.get_by_role("link", name="返回办理进度").click()
            await phone.get_by_text("办理进度").wait_for()
            await assert_accessible(phone, "timeline")
            await phone.screenshot(path=str(ARTIFACTS / "hall-applicant-timeline.png"))

            for seq, stage in ((1, "initial"), (2, "re-review")):
                offer = await support.pending_offer(handle, seq)
                async with hall.db.session() as session:
                    await add_user(
                        session, offer.expert, Role.EXPERT, PASSWORD, expert_code=offer.expert
                    )
                expert = await browser.new_page(viewport=PHONE)
                await expert.goto(f"{url}/login")
                await expert.get_by_label("用户名").fill(offer.expert)
                await expert.get_by_label("密码").fill(PASSWORD)
                await expert.locator("form[action='/login/staff'] button").click()
                await expert.get_by_text("评审任务（").wait_for()
                for _ in range(30):  # visibility is eventually consistent
                    if await expert.get_by_text(app_id).count():
                        break
                    await asyncio.sleep(0.3)
                    await expert.reload()
                # The countdown ticks in the page (the script the CSP allows: the hall's own).
                await expert.locator(".countdown", has_text="秒").first.wait_for()
                assert "剩余" in (await expert.locator(".countdown").first.inner_text())
                await expert.screenshot(path=str(ARTIFACTS / f"hall-expert-inbox-{stage}.png"))
                await assert_accessible(expert, "inbox")
                await expert.get_by_role("link", name=re.compile("糖尿病")).click()
                # The scan, inline: both pages of the PDF rendered by the hall.
                await expert.get_by_role("link", name=re.compile("诊断证明")).click()
                pages = expert.locator("figure.scan img")
                await pages.nth(1).scroll_into_view_if_needed()
                await expert.wait_for_function(
                    "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
                )
                assert await pages.count() == 2
                await expert.screenshot(
                    path=str(ARTIFACTS / f"hall-expert-scan-{stage}.png"), full_page=True
                )
                if stage == "initial":
                    await assert_accessible(expert, "scan")
                await expert.get_by_role("link", name="← 返回评审任务").click()
                await expert.get_by_role("button", name="受理", exact=True).click()
                await expert.get_by_text("已受理").wait_for()
                await expert.goto(f"{url}/expert/tasks/{app_id}")
                await assert_accessible(expert, "task")
                await expert.get_by_label("评审意见").fill("符合认定标准")
                await expert.screenshot(path=str(ARTIFACTS / f"hall-expert-task-{stage}.png"))
                await expert.get_by_role("button", name="通过", exact=True).click()
                await expert.get_by_text("已提交评审意见：通过").wait_for()
                await expert.close()

            await support.eventually(handle, lambda p: p.finished_at is not None, 30)
            await phone.reload()
            await phone.get_by_text("办理结果：已通过认定").wait_for()
            assert "待遇有效期" in await phone.content()
            page_text = await phone.inner_text("main")
            assert not re.search(r"\bE\d{3}\b", page_text)  # no expert code on the timeline
            await phone.screenshot(
                path=str(ARTIFACTS / "hall-applicant-approved.png"), full_page=True
            )
        finally:
            await browser.close()


async def test_fifty_signed_in_sessions_on_the_inbox_and_timeline_pages(hall: Hall) -> None:
    """The load check of `chronic hall-load` against a served hall: no page fails; the page
    times are printed (this process also runs the five workers and the 50 clients)."""
    for id_number in (support.WANG, support.LI, support.ZHANG):
        await hall.apply(id_number)
    async with hall.db.session() as session:
        for code in ("E001", "E002"):
            await add_user(session, code, Role.EXPERT, PASSWORD, expert_code=code)
    visits = await open_visits(hall.db, 50)
    assert {v.pages[0] for v in visits} == {"/me", "/expert"}
    async with served(hall) as url:
        report = await run_load(url, visits, rounds=4)
        # At a person's pace: each page is asked for after a pause of 0.1–0.3 s.
        paced = await run_load(url, visits[:6], rounds=2, pause=0.2)
    await end_visits(hall.db, visits)
    for page in sorted(report.times):
        print(report.line(page))
    assert report.errors == 0 and report.requests == 50 * 4 * 2 - 20 * 4
    assert paced.errors == 0 and paced.requests == 6 * 2 * 2 - 2 * 2  # 4 applicants, 2 experts
    assert paced.seconds >= 2 * 2 * 0.1  # an applicant's four pages, each after its pause
    async with hall.db.session() as session:
        assert (await session.exec(select(HallSession))).all() == []

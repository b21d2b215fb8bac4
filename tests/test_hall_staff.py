"""The hall's office and hospital-desk pages, against the session's dev server, a seeded
database of this module's own and the product's workers.

One hall serves the whole module (accounts made once); each test makes the applications it
counts. The review worker's reconciler runs only at start (interval of an hour) and takes any
open row as old enough, so rows recorded without a process stay without one and show up as
stuck.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

import httpx
import hypothesis
import pyotp
import pytest
import schemathesis
from fastapi.routing import APIRoute
from schemathesis.core.result import Ok
from sqlmodel import col, select, update
from typer.testing import CliRunner, Result

from chronic.cli import app
from chronic.db import Database
from chronic.hall import desk, office, totp
from chronic.hall.accounts import Role, add_user
from chronic.settings import Settings
from chronic.submission import StartDeferred, submit
from models.domain import ExpertStatus
from models.messages import OfficeAccept
from models.notifications import SmsTemplate
from models.tables import Application, AuditEvent, Expert, HallUser, Material, SmsOutbox
from tests import support
from tests.fixtures.database import database_copy
from tests.fixtures.scans import pdf_scan, photo
from tests.fixtures.temporal import running_workers
from tests.test_hall import (
    PASSWORD,
    Hall,
    _apply_fields,
    _hidden,
    csrf_of,
    served,
    sign_in_applicant,
    sign_in_staff,
)
from tests.test_regions import ASSESSOR, ERJIA, TONGJI, wuhan_form, wuhan_register
from workflows.application import ApplicationWorkflow

APPLICANT = "applicant"
ACCOUNTS = {
    "clerk1": (Role.CLERK, None),
    "op1": (Role.OPERATOR, None),
    "desk-h01": (Role.HOSPITAL, "H01"),
    "desk-h02": (Role.HOSPITAL, "H02"),
    "tongji": (Role.HOSPITAL, TONGJI),
    "erjia": (Role.HOSPITAL, ERJIA),
    "w03": (Role.HOSPITAL, ASSESSOR),
}


@pytest.fixture(scope="module")
async def staff(
    dev_server: object, embedded_postgres: object, seeded_template: object, tmp_path_factory: object
) -> AsyncIterator[Hall]:
    from temporalio.testing import WorkflowEnvironment

    from tests.fixtures.database import SeededTemplate

    assert isinstance(dev_server, WorkflowEnvironment)
    assert isinstance(seeded_template, SeededTemplate)
    settings = Settings(
        state_dir=tmp_path_factory.mktemp("staff"),  # type: ignore[attr-defined]
        reconcile_interval_seconds=3600,
        reconcile_min_age_seconds=0,
        temporal_ui_url="http://ui.test",
    )
    started = datetime.now(UTC)
    async with database_copy(embedded_postgres, seeded_template.name) as db:  # type: ignore[arg-type]
        async with db.session() as session:
            for name, (role, hospital) in ACCOUNTS.items():
                await add_user(session, name, role, PASSWORD, hospital_code=hospital)
        async with running_workers(dev_server.client, db, settings):
            yield Hall(dev_server, db, settings, started)
            await support.terminate_started_since(dev_server.client, started)


@asynccontextmanager
async def signed_in(hall: Hall, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with hall.browser() as browser:
        answer = await sign_in_staff(browser, username)
        assert answer.status_code == 303, answer.text
        yield browser


async def recorded_only(db: Database, form: object, **options: str) -> str:
    """An application recorded without its process (as when Temporal did not answer)."""
    try:
        await submit(form, client=None, db=db, settings=Settings(), **options)  # type: ignore[arg-type]
    except StartDeferred as deferred:
        return deferred.application_id
    raise AssertionError("submitted without a client, yet not deferred")


async def new_person(db: Database, sequence: int) -> str:
    id_number, _ = await support.insured_person(
        db, place="411202", born=date(1985, 3, 4), sequence=sequence
    )
    return id_number


# ---- the office -------------------------------------------------------------------------------


async def test_an_office_clerk_sees_the_counts_the_sla_and_the_stuck_of_what_was_created(
    staff: Hall,
) -> None:
    async with signed_in(staff, "clerk1") as clerk:
        before = {r["region"]: r for r in (await clerk.get("/api/office/overview")).json()}
        made = [
            await recorded_only(staff.db, support.form(await new_person(staff.db, n)))
            for n in (1, 2, 3)
        ]
        late = made[0]
        async with staff.db.session() as session:
            await session.exec(
                update(Application)
                .where(col(Application.id) == late)
                .values(submitted_at=datetime.now(UTC) - timedelta(days=45))
            )

        after = {r["region"]: r for r in (await clerk.get("/api/office/overview")).json()}
        then, now = before["sanmenxia"], after["sanmenxia"]
        assert now["by_status"].get("submitted", 0) == then["by_status"].get("submitted", 0) + 3
        assert now["open_by_stage"]["intake"] == then["open_by_stage"].get("intake", 0) + 3
        assert now["open_overdue"] == then["open_overdue"] + 1
        assert now["sla_breaches"] == then["sla_breaches"] + 1
        assert now["temporal_ui"].startswith("http://ui.test/namespaces/default/workflows?query=")

        listed = (
            await clerk.get("/api/office/applications", params={"status": "submitted"})
        ).json()
        rows = {r["application_id"]: r for r in listed}
        assert set(made) <= set(rows)
        limit = rows[late]["sla_working_days_max"]
        assert limit > 0 and rows[late]["working_days"] > limit and rows[late]["overdue"]
        assert not rows[made[1]]["overdue"] and rows[made[1]]["working_days"] <= 1
        assert rows[late]["temporal_ui"] == f"http://ui.test/namespaces/default/workflows/{late}"
        assert rows[late]["applicant"] == "测试"
        overdue = (await clerk.get("/api/office/applications", params={"overdue": "true"})).json()
        assert late in {r["application_id"] for r in overdue}
        assert made[1] not in {r["application_id"] for r in overdue}

        page = await clerk.get("/office", params={"status": "submitted"})
        assert page.status_code == 200
        assert all(a in page.text for a in made)
        assert f"http://ui.test/namespaces/default/workflows/{late}" in page.text
        assert "ChronicStatus%20%3D%20%27submitted%27" in page.text  # the UI's filter
        assert support.WANG not in page.text and "13803981234" not in page.text

        stuck = (await clerk.get("/api/office/stuck")).json()
        assert stuck["temporal_answered"]
        why = {s["application_id"]: s["why"] for s in stuck["applications"]}
        assert all("没有运行中的办理流程" in why[a] for a in made)
        assert "超过办理时限" in why[late] and "超过办理时限" not in why[made[1]]
        stuck_page = await clerk.get("/office/stuck")
        assert stuck_page.status_code == 200 and late in stuck_page.text


async def test_an_operator_reinstates_an_expert_from_the_page_as_themselves(staff: Hall) -> None:
    async with staff.db.session() as session:
        code = (await session.exec(select(Expert.code).order_by(col(Expert.code)))).first()
        assert code is not None
        await session.exec(
            update(Expert)
            .where(col(Expert.code) == code)
            .values(
                status=ExpertStatus.DISQUALIFIED,
                consecutive_strikes=3,
                disqualified_at=datetime.now(UTC),
            )
        )
    async with signed_in(staff, "clerk1") as clerk:
        pool = await clerk.get("/office/experts")
        assert pool.status_code == 200 and "已取消资格" in pool.text
        assert f"/office/experts/{code}/reinstate" not in pool.text  # not a clerk's
        token = await csrf_of(clerk, "/office/experts")
        refused = await clerk.post(
            f"/office/experts/{code}/reinstate", data={"csrf_token": token, "reason": "x"}
        )
        assert refused.status_code == 403
    async with signed_in(staff, "op1") as operator:
        token = await csrf_of(operator, "/office/experts")
        assert f"/office/experts/{code}/reinstate" in (await operator.get("/office/experts")).text
        empty = await operator.post(
            f"/office/experts/{code}/reinstate", data={"csrf_token": token, "reason": "  "}
        )
        assert empty.status_code == 409 and "请填写原因" in empty.text
        done = await operator.post(
            f"/office/experts/{code}/reinstate", data={"csrf_token": token, "reason": "申诉成立"}
        )
        assert done.status_code == 200, done.text
        assert f"已恢复专家 {code}" in done.text
        again = await operator.post(
            f"/api/office/experts/{code}/reinstate",
            json={"reason": "再次"},
            headers={"X-CSRF-Token": token},
        )
        # The CLI's refusal, word for word (one code path: chronic.pool.reinstate).
        assert again.status_code == 409
        assert (
            again.json()["detail"] == f"{code} is active already (0 strikes): nothing to reinstate"
        )
        experts = {e["code"]: e for e in (await operator.get("/api/office/experts")).json()}
        assert experts[code]["status"] == "active" and experts[code]["consecutive_strikes"] == 0
    async with staff.db.session() as session:
        events = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "expert_reinstated", AuditEvent.actor == "hall:op1"
                )
            )
        ).all()
    assert [(e.detail["expert"], e.detail["reason"], e.detail["was"]) for e in events] == [
        (code, "申诉成立", "disqualified")
    ]


# ---- hospital desks ---------------------------------------------------------------------------


async def test_a_hospital_desk_sees_only_its_own_submissions(staff: Hall) -> None:
    mine = await recorded_only(
        staff.db, support.form(await new_person(staff.db, 11), submitted_by="hospital")
    )  # the diagnosing hospital's desk (H01) by default
    theirs = await recorded_only(
        staff.db,
        support.form(await new_person(staff.db, 12), submitted_by="hospital"),
        submitting_hospital="H02",
    )
    async with signed_in(staff, "desk-h01") as h01:
        home = await h01.get("/desk")
        assert home.status_code == 200 and mine in home.text and theirs not in home.text
        listed = (await h01.get("/api/desk/applications")).json()
        assert [r["application_id"] for r in listed["submitted"]].count(mine) == 1
        assert theirs not in {r["application_id"] for r in listed["submitted"]}
        own = await h01.get(f"/desk/applications/{mine}")
        assert own.status_code == 200 and "测试" in own.text and "提交申请" in own.text
        assert support.WANG not in own.text and "13803981234" not in own.text
        assert (await h01.get(f"/desk/applications/{theirs}")).status_code == 404
        assert (await h01.get(f"/api/desk/applications/{theirs}")).status_code == 404
        token = await csrf_of(h01, "/desk")
        refused = await h01.post(
            f"/api/desk/applications/{theirs}/opinion",
            json={"approve": True, "opinion": "符合"},
            headers={"X-CSRF-Token": token},
        )
        assert refused.status_code == 404
    async with signed_in(staff, "desk-h02") as h02:
        listed = (await h02.get("/api/desk/applications")).json()
        assert {r["application_id"] for r in listed["submitted"]} >= {theirs}
        assert mine not in {r["application_id"] for r in listed["submitted"]}


async def test_a_desk_submits_for_an_applicant_with_scans_kept_through_a_refused_form(
    staff: Hall,
) -> None:
    """辅助申报: the desk names the applicant by ID number, uploads a real PDF and a photo;
    a form for someone insured elsewhere is refused with the uploads kept; the application is
    the hospital's, the applicant's own, and in the audit trail as the desk user's."""
    id_number = await new_person(staff.db, 31)
    elsewhere, _ = await support.insured_person(
        staff.db, place="420106", born=date(1980, 1, 1), sequence=125, region="wuhan"
    )
    scan, jpeg = pdf_scan(1), photo("JPEG")
    async with signed_in(staff, "desk-h01") as h01:
        form = await h01.get("/desk/apply")
        assert form.status_code == 200 and "申请人居民身份证号码" in form.text
        token = await csrf_of(h01, "/desk/apply")
        refused = await h01.post(
            "/desk/apply",
            data=_apply_fields(token, id_number=elsewhere, case_number=""),
            files={"file_0": ("诊断证明.pdf", scan, "application/pdf")},
        )
        assert refused.status_code == 400, refused.text
        page = refused.text
        assert "身份证号：该参保人不在本院所在的统筹地区参保，本院不能为其代为申报" in page
        assert "病案号：不能为空" in page  # told together with the rest of the form
        assert _hidden(page, "sha256_0") == hashlib.sha256(scan).hexdigest()
        assert "已上传：诊断证明.pdf（1 页）" in page and f'value="{elsewhere}"' in page
        api_refused = await h01.post(
            "/api/desk/applications",
            json={
                "id_number": "123",
                "disease_code": "DM",
                "mobile": "13803981234",
                "case_number": "BA-1",
                "diagnosing_hospital": "H01",
                "designated_hospital": "H05",
            },
            headers={"X-CSRF-Token": token},
        )
        assert api_refused.status_code == 422
        assert api_refused.json()["detail"][0]["field"] == "applicant.id_number"

        token = await csrf_of(h01, "/desk/apply")
        submitted = await h01.post(
            "/desk/apply",
            data=_apply_fields(
                token,
                id_number=id_number,
                sha256_0=_hidden(page, "sha256_0"),
                name_0=_hidden(page, "name_0"),
                pages_0=_hidden(page, "pages_0"),
            ),
            files={"file_1": ("IMG_1.jpg", jpeg, "image/jpeg")},
        )
        assert submitted.status_code == 200 and "已代为提交申请" in submitted.text
        found = re.search(r"APP-\d{8}-[0-9A-Z]{6}", submitted.text)
        assert found
        app_id = found.group(0)
        listed = (await h01.get("/api/desk/applications")).json()
        assert app_id in {r["application_id"] for r in listed["submitted"]}
        assert app_id in (await h01.get("/desk")).text

    async with staff.db.session() as session:
        row = await session.get(Application, app_id)
        materials = (
            await session.exec(select(Material).where(Material.application_id == app_id))
        ).all()
    assert row is not None and row.submitting_hospital_code == "H01"
    assert row.submitted_by == "hospital"
    assert {m.sha256 for m in materials} == {
        hashlib.sha256(scan).hexdigest(),
        hashlib.sha256(jpeg).hexdigest(),
    }
    person = await staff.person_id(id_number)
    async with staff.db.session() as session:
        audit = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.application_id == app_id, AuditEvent.action == "hall_submitted"
                )
            )
        ).all()
    assert [(e.actor, e.detail["for_applicant"], e.detail["hospital"]) for e in audit] == [
        ("hall:desk-h01", f"applicant:#{person}", "H01")
    ]
    assert id_number not in str([e.detail for e in audit])
    uploads = {e.detail["sha256"]: e.actor for e in await staff.audit("document_uploaded")}
    assert uploads[hashlib.sha256(scan).hexdigest()] == "hall:desk-h01"
    # The applicant gets the SMS of a submission, as for their own.
    sms = await _submitted_sms(staff.db, app_id)
    assert sms.recipient == "+8613803981234" and sms.params["link"].endswith(f"/a/{app_id}")

    async with staff.browser() as browser:
        await sign_in_applicant(staff, browser, id_number)
        assert app_id in (await browser.get("/me")).text
    async with signed_in(staff, "desk-h02") as h02:
        assert (await h02.get(f"/desk/applications/{app_id}")).status_code == 404
        listed = (await h02.get("/api/desk/applications")).json()
        assert app_id not in {r["application_id"] for r in listed["submitted"]}


async def _submitted_sms(db: Database, app_id: str, within: float = 20) -> SmsOutbox:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        sent = [s for s in await support.outbox(db, app_id) if s.template == SmsTemplate.SUBMITTED]
        if sent:
            return sent[0]
        assert asyncio.get_running_loop().time() < deadline, "no SUBMITTED SMS"
        await asyncio.sleep(0.2)


async def test_an_assessment_hospital_examines_and_gives_its_opinion_through_the_updates(
    staff: Hall,
) -> None:
    # Wuhan's track B: diagnosed at a 二甲 hospital, whose desk applies; the office names W03.
    person = await wuhan_register(staff.db)
    app_id = await submit(
        wuhan_form(person, "DM", ERJIA, submitted_by="hospital"),
        client=staff.client,
        db=staff.db,
        settings=staff.settings,
    )
    handle = staff.client.get_workflow_handle_for(ApplicationWorkflow.run, app_id)
    await support.eventually(
        handle, lambda p: p.stage == "office_acceptance" and "accept or return" in p.waiting_for
    )
    await handle.execute_update(
        ApplicationWorkflow.office_accept, OfficeAccept(clerk="clerk:t", hospital=ASSESSOR)
    )
    await support.eventually(handle, lambda p: p.stage == "hospital_assessment")

    async with signed_in(staff, "tongji") as stranger:
        assert (await stranger.get(f"/desk/applications/{app_id}")).status_code == 404
        listed = (await stranger.get("/api/desk/applications")).json()
        assert app_id not in {r["application_id"] for r in listed["to_assess"]}

    async with signed_in(staff, "erjia") as submitter:
        listed = (await submitter.get("/api/desk/applications")).json()
        assert app_id in {r["application_id"] for r in listed["submitted"]}
        assert app_id not in {r["application_id"] for r in listed["to_assess"]}
        case = await submitter.get(f"/desk/applications/{app_id}")
        assert case.status_code == 200 and "安排现场鉴定" not in case.text
        token = await csrf_of(submitter, "/desk")
        refused = await submitter.post(
            f"/api/desk/applications/{app_id}/opinion",
            json={"approve": True, "opinion": "符合"},
            headers={"X-CSRF-Token": token},
        )
        # The validator's words, as `chronic hospital opinion -H W02` prints them.
        assert refused.status_code == 409
        assert refused.json()["detail"] == (
            f"{ERJIA} is not the assessment hospital of this application ({ASSESSOR} is)"
        )

    async with signed_in(staff, "w03") as assessor:
        listed = (await assessor.get("/api/desk/applications")).json()
        assert app_id in {r["application_id"] for r in listed["to_assess"]}
        assert app_id not in {r["application_id"] for r in listed["submitted"]}
        case = await assessor.get(f"/desk/applications/{app_id}")
        assert case.status_code == 200 and "安排现场鉴定" in case.text
        token = await csrf_of(assessor, f"/desk/applications/{app_id}")
        examined = await assessor.post(
            f"/desk/applications/{app_id}/examination",
            data={"csrf_token": token, "at": "2030-12-09T09:00", "place": "门诊楼三楼"},
        )
        assert examined.status_code == 200, examined.text
        assert "已安排现场鉴定（2030-12-09 09:00）" in examined.text
        await support.eventually(handle, lambda p: p.examination is not None)
        opinion = await assessor.post(
            f"/api/desk/applications/{app_id}/opinion",
            json={"approve": True, "opinion": "符合认定标准"},
            headers={"X-CSRF-Token": token},
        )
        assert opinion.status_code == 200, opinion.text
        await support.eventually(handle, lambda p: p.stage == "office_confirmation")
        # No longer its to assess: the page is refused like any other application's.
        assert (await assessor.get(f"/desk/applications/{app_id}")).status_code == 404
    assert f"hospital:{ASSESSOR}" in await support.audit_actors(
        staff.db, app_id, "status_in_review"
    )
    assert await support.audit_actors(staff.db, app_id, "hall_examination_scheduled") == [
        "hall:w03"
    ]
    assert await support.audit_actors(staff.db, app_id, "hall_hospital_opinion") == ["hall:w03"]


# ---- who may open what ------------------------------------------------------------------------

WRONG_ROLE = {
    "/office": "desk-h01",
    "/api/office": "desk-h01",
    "/desk": "clerk1",
    "/api/desk": "op1",
    "/account": APPLICANT,
    "/api/account": APPLICANT,
}
"""Who is signed in, but not for the routes under each prefix."""


def _staff_routes() -> list[APIRoute]:
    routers = (office.pages, office.api, desk.pages, desk.api, totp.pages, totp.api)
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    return [r for r in routes if r.path != "/login/totp"]  # sign-in's second step


async def test_every_office_desk_and_account_route_refuses_no_session_and_a_wrong_role(
    staff: Hall,
) -> None:
    async with AsyncExitStack() as stack:
        nobody = await stack.enter_async_context(staff.browser())
        wrong = {
            name: await stack.enter_async_context(signed_in(staff, name))
            for name in set(WRONG_ROLE.values()) - {APPLICANT}
        }
        wrong[APPLICANT] = await stack.enter_async_context(staff.browser())
        await sign_in_applicant(staff, wrong[APPLICANT], support.WANG)
        tokens = {None: await csrf_of(nobody)} | {n: await csrf_of(b) for n, b in wrong.items()}
        checked = 0
        for route in _staff_routes():
            path = route.path.format(application_id="APP-20261123-7K3QF9", code="E001")
            prefix = max((p for p in WRONG_ROLE if path.startswith(p)), key=len)
            for method in sorted(route.methods or ()):
                for who, browser in (
                    (None, nobody),
                    (WRONG_ROLE[prefix], wrong[WRONG_ROLE[prefix]]),
                ):
                    api = path.startswith("/api")
                    response = await browser.request(
                        method,
                        path,
                        headers={"X-CSRF-Token": tokens[who]},
                        data=None if api else {"csrf_token": tokens[who]},
                        json={} if api and method == "POST" else None,
                    )
                    if who is None and not api:
                        assert response.status_code == 303, (method, path, response.text)
                        assert response.headers["location"] == (
                            "/login?" + urlencode({"next": path}) if method == "GET" else "/login"
                        )
                    else:
                        expected = 401 if who is None else 403
                        assert response.status_code == expected, (method, path, who, response.text)
                    checked += 1
        assert checked >= 30


# ---- the second factor ------------------------------------------------------------------------

_SECRET = re.compile(r'<code id="secret" class="secret">([A-Z2-7]+)</code>')


async def test_totp_enrolment_then_a_wrong_code_is_refused_and_the_right_one_signs_in(
    staff: Hall, configured: Callable[..., None]
) -> None:
    async with staff.db.session() as session:
        await add_user(session, "totp-op", Role.OPERATOR, PASSWORD)
    async with signed_in(staff, "totp-op") as browser:
        token = await csrf_of(browser, "/account/totp")
        started = await browser.post("/account/totp/start", data={"csrf_token": token})
        assert started.status_code == 200
        found = _SECRET.search(started.text)
        assert found and "otpauth://totp/" in started.text
        secret = found.group(1)
        authenticator = pyotp.TOTP(secret)
        shown_again = await browser.get("/account/totp")
        assert secret not in shown_again.text  # shown once
        wrong = f"{(int(authenticator.now()) + 1) % 1_000_000:06d}"
        refused = await browser.post(
            "/account/totp/confirm", data={"csrf_token": token, "code": wrong}
        )
        assert refused.status_code == 400 and "动态验证码错误" in refused.text
        confirmed = await browser.post(
            "/account/totp/confirm", data={"csrf_token": token, "code": authenticator.now()}
        )
        assert confirmed.status_code == 200 and "已启用" in confirmed.text
    async with staff.db.session() as session:
        row = (await session.exec(select(HallUser).where(HallUser.username == "totp-op"))).one()
    assert row.totp_secret is not None and row.totp_secret.startswith("sealed:")
    assert secret not in row.totp_secret and row.totp_confirmed_at is not None

    async with staff.browser() as browser:
        # The page asked for before signing in goes along through the second step.
        asked = await sign_in_staff(browser, "totp-op", next="/office/stuck")
        assert asked.status_code == 200 and "动态验证码" in asked.text  # no session yet
        assert 'name="next" value="/office/stuck"' in asked.text
        assert (await browser.get("/office")).status_code == 303
        token = await csrf_of(browser)
        with_next = {"csrf_token": token, "next": "/office/stuck"}
        wrong_code = await browser.post("/login/totp", data={**with_next, "code": wrong})
        assert wrong_code.status_code == 400 and "动态验证码错误" in wrong_code.text
        assert 'name="next" value="/office/stuck"' in wrong_code.text
        assert (await browser.get("/office")).status_code == 303
        fresh = authenticator.at(
            datetime.now(UTC).timestamp() + authenticator.interval
        )  # the next step's
        right = await browser.post("/login/totp", data={**with_next, "code": fresh})
        assert right.status_code == 303 and right.headers["location"] == "/office/stuck"
        assert (await browser.get("/office")).status_code == 200
        # The API wants the code with the password; a used code does not work again.
        without = await browser.post(
            "/api/session/staff",
            json={"username": "totp-op", "password": PASSWORD},
            headers={"X-CSRF-Token": token},
        )
        assert without.status_code == 401
        reused = await browser.post(
            "/api/session/staff",
            json={"username": "totp-op", "password": PASSWORD, "totp_code": fresh},
            headers={"X-CSRF-Token": token},
        )
        assert reused.status_code == 400
        # Guessing codes is stopped like guessing passwords.
        answers = []
        for _ in range(6):
            again = await sign_in_staff(browser, "totp-op")
            if again.status_code == 429:
                answers.append(429)
                break
            guess = await browser.post("/login/totp", data={"csrf_token": token, "code": wrong})
            answers.append(guess.status_code)
        assert answers[-1] == 429, answers
    assert "hall:totp-op" in {e.actor for e in await staff.audit("hall_totp_enabled")}
    signed = [e for e in await staff.audit("hall_sign_in") if e.actor == "hall:totp-op"]
    assert [e.detail["by"] for e in signed] == ["password", "password+totp"]

    configured(temporal=staff.client.service_client.config.target_host, database_url=staff.db.url)
    cleared = await asyncio.to_thread(
        CliRunner().invoke, app, ["user", "reset", "totp-op", "--totp"]
    )
    assert cleared.exit_code == 0, cleared.output
    async with staff.db.session() as session:
        row = (await session.exec(select(HallUser).where(HallUser.username == "totp-op"))).one()
    assert row.totp_secret is None and row.totp_confirmed_at is None
    assert [e.detail["username"] for e in await staff.audit("hall_totp_cleared")] == ["totp-op"]


# ---- the CLI acting as an expert --------------------------------------------------------------


async def test_cli_expert_actions_are_the_operators_on_behalf_or_the_experts_own(
    staff: Hall, configured: Callable[..., None]
) -> None:
    app_id = await submit(
        support.form(await new_person(staff.db, 21)),
        client=staff.client,
        db=staff.db,
        settings=staff.settings,
    )
    handle = staff.client.get_workflow_handle_for(ApplicationWorkflow.run, app_id)
    offer = await support.pending_offer(handle)
    async with staff.db.session() as session:
        await add_user(session, offer.expert, Role.EXPERT, PASSWORD, expert_code=offer.expert)
    configured(
        temporal=staff.client.service_client.config.target_host,
        database_url=staff.db.url,
        CHRONIC_OPERATOR="wang",
    )
    runner = CliRunner()

    def cli(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input)

    accept = ("expert", "accept", app_id, "--expert", offer.expert, "--as-expert")
    wrong = await asyncio.to_thread(cli, *accept, input="not the password\n")
    assert wrong.exit_code == 1 and "wrong password" in wrong.output
    assert await staff.update_events(app_id) == []  # refused before the workflow heard of it
    signed = await asyncio.to_thread(cli, *accept, input=f"{PASSWORD}\n")
    assert signed.exit_code == 0, signed.output
    assert PASSWORD not in signed.output
    decided = await asyncio.to_thread(
        cli, "expert", "decide", app_id, "--expert", offer.expert, "--approve", "-o", "符合"
    )
    assert decided.exit_code == 0, decided.output

    [accepted] = await staff.audit("cli_accept")
    assert accepted.actor == f"expert:{offer.expert}"
    assert accepted.detail["account"] == offer.expert and accepted.detail["via"] == "cli"
    assert accepted.detail["terminal"] == "operator:wang"
    [approved] = [e for e in await staff.audit("cli_approve") if e.application_id == app_id]
    assert approved.actor == "operator:wang"
    assert approved.detail["on_behalf"] is True and approved.detail["expert"] == offer.expert


# ---- property-based: schemathesis over the OpenAPI document -----------------------------------

FUZZ_EXAMPLES = 4
"""Cases per operation and identity: with three identities and about 30 operations, about
300 requests, some ten seconds here (``make test`` has a 10-minute budget)."""


async def test_schemathesis_over_the_openapi_document_finds_no_server_error(staff: Hall) -> None:
    """Every operation of ``/api/openapi.json``, as nobody, an operator and a hospital desk,
    with cases schemathesis derives from the document (derandomized: the same cases each
    run): no answer is a 5xx. The hall runs in this process (uvicorn on this event loop, the
    module's database and the dev server); the cases are sent from a thread."""
    async with staff.db.session() as session:
        await add_user(session, "fuzz-op", Role.OPERATOR, PASSWORD)
        await add_user(session, "fuzz-desk", Role.HOSPITAL, PASSWORD, hospital_code="W03")
    async with served(staff) as base, AsyncExitStack() as stack:
        identities: dict[str, dict[str, str]] = {}
        for name in (None, "fuzz-op", "fuzz-desk"):
            browser = await stack.enter_async_context(
                signed_in(staff, name) if name else staff.browser()
            )
            token = (await browser.get("/api/csrf")).json()["csrf_token"]
            cookies = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
            identities[name or "nobody"] = {"Cookie": cookies, "X-CSRF-Token": token}
            document = (await browser.get("/api/openapi.json")).json()
        schema = schemathesis.openapi.from_dict(document)
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # the document is valid OpenAPI
            # Signing out would end the identity's session half-way through its cases.
            if result.ok().path != "/api/session/end":
                operations.append(result.ok())
        assert len(operations) >= 20

        sent: list[int] = []

        def fuzz(headers: dict[str, str]) -> list[str]:
            failures: list[str] = []
            for operation in operations:

                @hypothesis.given(case=operation.as_strategy())
                @hypothesis.settings(
                    max_examples=FUZZ_EXAMPLES,
                    derandomize=True,
                    deadline=None,
                    database=None,
                    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                    suppress_health_check=list(hypothesis.HealthCheck),
                )
                def check(case: schemathesis.Case) -> None:
                    response = case.call(base_url=base, headers=headers, timeout=30)
                    sent.append(response.status_code)
                    if response.status_code >= 500:
                        failures.append(
                            f"{case.method} {case.formatted_path} -> {response.status_code}: "
                            f"{response.text[:200]}"
                        )

                check()
            return failures

        for name, headers in identities.items():
            failures = await asyncio.to_thread(fuzz, headers)
            assert failures == [], (name, failures)
        assert len(sent) >= 3 * len(operations)
        assert {200, 401, 403} <= set(sent)  # answered as each identity, not just refused

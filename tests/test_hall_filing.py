"""Out-of-area care filings (异地就医备案) in the hall: an applicant's own, a desk's for one.

Against the session's dev server, a copy of the seeded database of this module's own and the
product's workers (the filing's process really decides: it writes the row the pages read).
Each test signs in people of its own (a sign-in code goes out once a minute per person).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.routing import APIRoute
from sqlmodel import col, select

from chronic.db import Database
from chronic.hall import filing
from chronic.hall.accounts import Role, add_user
from chronic.settings import Settings
from models.domain import FilingStatus, InsuranceType
from models.tables import AuditEvent, FilingRecord, FilingUpload
from tests import support
from tests.fixtures.database import database_copy
from tests.fixtures.scans import pdf_scan, photo
from tests.fixtures.temporal import running_workers
from tests.test_hall import PASSWORD, Hall, _hidden, csrf_of, sign_in_applicant
from tests.test_hall_staff import signed_in

_FILING_ID = re.compile(r"FIL-\d{8}-[0-9A-Z]{6}")


@pytest.fixture(scope="module")
async def hall(
    dev_server: object, embedded_postgres: object, seeded_template: object, tmp_path_factory: object
) -> AsyncIterator[Hall]:
    from temporalio.testing import WorkflowEnvironment

    from tests.fixtures.database import SeededTemplate

    assert isinstance(dev_server, WorkflowEnvironment)
    assert isinstance(seeded_template, SeededTemplate)
    settings = Settings(
        state_dir=tmp_path_factory.mktemp("filing"),  # type: ignore[attr-defined]
        # The reconciler runs at start only: a filing recorded without its process stays so.
        reconcile_interval_seconds=3600,
    )
    started = datetime.now(UTC)
    async with database_copy(embedded_postgres, seeded_template.name) as db:  # type: ignore[arg-type]
        async with db.session() as session:
            await add_user(session, "desk-h01", Role.HOSPITAL, PASSWORD, hospital_code="H01")
            await add_user(session, "desk-h02", Role.HOSPITAL, PASSWORD, hospital_code="H02")
        async with running_workers(dev_server.client, db, settings):
            yield Hall(dev_server, db, settings, started)
            await support.terminate_started_since(dev_server.client, started)


async def person(db: Database, sequence: int, **options: Any) -> str:
    """A new person insured normally in Sanmenxia (employee insurance) unless told otherwise."""
    id_number, _ = await support.insured_person(
        db,
        place=options.pop("place", "411202"),
        born=date(1970, 5, 6),
        sequence=sequence,
        **options,
    )
    return id_number


def fields(token: str, **changes: str) -> dict[str, str]:
    """A long-term residence filing (浙江省杭州市) starting in five days, as the page posts it."""
    return {
        "csrf_token": token,
        "mobile": "13803981234",
        "insurance_type": "employee",
        "filing_type": "long_term_residence",
        "province": "浙江省",
        "city": "杭州市",
        "start_date": (date.today() + timedelta(days=5)).isoformat(),
        "end_date": "",
        "contact_name": "王建军",
        "contact_mobile": "13957112345",
        **changes,
    }


async def rows_of(db: Database, id_number: str) -> list[FilingRecord]:
    async with db.session() as session:
        return list(
            (
                await session.exec(
                    select(FilingRecord)
                    .where(col(FilingRecord.person_id) == await _person_id(db, id_number))
                    .order_by(col(FilingRecord.submitted_at))
                )
            ).all()
        )


async def _person_id(db: Database, id_number: str) -> int:
    from models.tables import InsuredPerson

    async with db.session() as session:
        found = await session.scalar(
            select(InsuredPerson.id).where(InsuredPerson.id_number == id_number)
        )
    assert found is not None
    return found


async def decided(
    db: Database, filing_id: str, condition: Callable[[FilingRecord], bool] | None = None
) -> FilingRecord:
    """The filing's row once its process has decided (activities run in real time)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        async with db.session() as session:
            row = await session.get(FilingRecord, filing_id)
        assert row is not None
        if row.closed_at is not None and (condition is None or condition(row)):
            return row
        assert asyncio.get_running_loop().time() < deadline, f"not decided: {row!r}"
        await asyncio.sleep(0.2)


async def audit_of(db: Database, filing_id: str, action: str) -> list[AuditEvent]:
    async with db.session() as session:
        return list(
            (
                await session.exec(
                    select(AuditEvent).where(
                        AuditEvent.filing_id == filing_id, AuditEvent.action == action
                    )
                )
            ).all()
        )


def filing_id_in(page: str) -> str:
    found = _FILING_ID.search(page)
    assert found, page
    return found.group(0)


async def test_an_applicant_files_with_uploads_kept_through_a_refused_form_and_sees_it_filed(
    hall: Hall,
) -> None:
    own = await person(hall.db, 601)
    id_card = photo("JPEG", (600, 400))
    residence = pdf_scan(1, title="Residence permit 601")
    async with hall.browser() as browser:
        await sign_in_applicant(hall, browser, own)
        home = await browser.get("/me")
        assert 'href="/me/filings"' in home.text
        listed = await browser.get("/me/filings")
        assert listed.status_code == 200 and "您还没有异地就医备案" in listed.text
        form = await browser.get("/me/filing")
        assert form.status_code == 200 and "异地就医备案" in form.text
        assert "测试" in form.text and "河南省三门峡市" in form.text  # from the register
        assert own not in form.text  # the ID number is never typed, nor shown
        assert 'value="employee" selected' in form.text  # the register's insurance

        # A long-term filing with an end date, a contact mobile that is none, and only the
        # ID card: refused, told in Chinese, the ID card kept.
        token = await csrf_of(browser, "/me/filing")
        end = (date.today() + timedelta(days=60)).isoformat()
        refused = await browser.post(
            "/me/filing",
            data=fields(token, end_date=end, contact_mobile="12345", upload_kind_0="id_card"),
            files={"file_0": ("身份证正反面.jpg", id_card, "image/jpeg")},
        )
        assert refused.status_code == 400, refused.text
        page = refused.text
        assert "备案未提交，请修改以下" in page
        assert "备案结束日期：长期备案没有结束日期：请清空结束日期" in page
        assert "联系人手机号码：不是能接收短信的大陆手机号码" in page
        assert (
            "备案材料：缺少「居住证明（居住证或个人承诺书）」：异地长期居住人员备案需要上传此材料"
            in page
        )
        # Told in the order of the page's fields.
        told = [page.index(f"<li>{t}：") for t in ("备案结束日期", "联系人手机号码", "备案材料")]
        assert told == sorted(told)
        assert "已上传：身份证正反面.jpg" in page
        assert _hidden(page, "sha256_0") == hashlib.sha256(id_card).hexdigest()
        assert f'value="{end}"' in page and 'value="浙江省" selected' in page
        assert await rows_of(hall.db, own) == []  # nothing recorded

        # Corrected, with the ID card kept from the first try and the residence proof now.
        token = await csrf_of(browser, "/me/filing")
        submitted = await browser.post(
            "/me/filing",
            data=fields(
                token,
                upload_kind_0="id_card",
                sha256_0=_hidden(page, "sha256_0"),
                name_0=_hidden(page, "name_0"),
                pages_0=_hidden(page, "pages_0"),
                upload_kind_1="residence_proof",
            ),
            files={"file_1": ("居住证.pdf", residence, "application/pdf")},
        )
        assert submitted.status_code == 200, submitted.text
        assert "异地就医备案已提交" in submitted.text
        filing_id = filing_id_in(submitted.text)

        row = await decided(hall.db, filing_id)
        assert row.status == FilingStatus.FILED, row.reasons
        start = date.today() + timedelta(days=5)
        mine = await browser.get("/me/filings")
        assert filing_id in mine.text and "备案成功" in mine.text
        assert f"有效期：{start.isoformat()} 起长期有效" in mine.text
        assert "异地长期居住人员" in mine.text and "浙江省杭州市" in mine.text
        shown = (await browser.get("/api/filings")).json()
        assert [(f["filing_id"], f["status"], f["valid_to"]) for f in shown] == [
            (filing_id, "filed", None)
        ]
        assert shown[0]["valid_from"] == start.isoformat()

    async with hall.db.session() as session:
        uploads = (
            await session.exec(
                select(FilingUpload)
                .where(FilingUpload.filing_id == filing_id)
                .order_by(col(FilingUpload.position))
            )
        ).all()
    assert [(u.kind, u.sha256) for u in uploads] == [
        ("id_card", hashlib.sha256(id_card).hexdigest()),
        ("residence_proof", hashlib.sha256(residence).hexdigest()),
    ]
    # The name the file had on the phone goes nowhere.
    assert [u.file_ref for u in uploads] == ["hall-filing-upload-1", "hall-filing-upload-2"]
    who = f"applicant:#{await _person_id(hall.db, own)}"
    assert [e.actor for e in await audit_of(hall.db, filing_id, "filing_submitted")] == [who]
    assert [e.actor for e in await audit_of(hall.db, filing_id, filing.HALL_SUBMITTED)] == [who]
    kept = {e.detail["sha256"]: e.actor for e in await hall.audit("document_uploaded")}
    assert kept[hashlib.sha256(id_card).hexdigest()] == who

    # Another applicant sees none of it, and cannot name its uploads.
    other = await person(hall.db, 602)
    async with hall.browser() as browser:
        await sign_in_applicant(hall, browser, other)
        theirs = await browser.get("/me/filings")
        assert theirs.status_code == 200 and filing_id not in theirs.text
        assert (await browser.get("/api/filings")).json() == []
        token = (await browser.get("/api/csrf")).json()["csrf_token"]
        answer = await browser.post(
            "/api/filings",
            json={
                "mobile": "13803981234",
                "insurance_type": "employee",
                "filing_type": "long_term_residence",
                "destination_province": "浙江省",
                "destination_city": "杭州市",
                "start_date": start.isoformat(),
                "contact_name": "王建军",
                "contact_mobile": "13957112345",
                "uploads": [
                    {"kind": "id_card", "sha256": hashlib.sha256(id_card).hexdigest()},
                    {"kind": "residence_proof", "sha256": hashlib.sha256(residence).hexdigest()},
                ],
            },
            headers={"X-CSRF-Token": token},
        )
        assert answer.status_code == 422
        assert answer.json()["detail"] == [
            {
                "field": f"uploads[{i}].file",
                "label": f"第{i + 1}份材料的文件",
                "message": "找不到您上传的这份文件：请重新选择文件上传。",
            }
            for i in (0, 1)
        ]
    assert await rows_of(hall.db, other) == []


async def test_a_filing_the_process_refuses_shows_its_reasons_in_chinese(hall: Hall) -> None:
    """Through the API: the register has employee insurance, the filing names resident; the
    process refuses, and the applicant reads why on the page."""
    own = await person(hall.db, 611)
    async with hall.browser() as browser:
        await sign_in_applicant(hall, browser, own)
        token = (await browser.get("/api/csrf")).json()["csrf_token"]
        headers = {"X-CSRF-Token": token}
        digests = []
        for scan in (pdf_scan(1, title="ID 611"), pdf_scan(1, title="Admission 611")):
            kept = await browser.post(
                "/api/documents",
                files={"file": ("scan.pdf", scan, "application/pdf")},
                headers=headers,
            )
            assert kept.status_code == 201, kept.text
            digests.append(kept.json()["sha256"])
        body = {
            "mobile": "13803981234",
            "insurance_type": "resident",
            "filing_type": "referral",
            "destination_province": "河南省",
            "destination_city": "郑州市",
            "start_date": (date.today() + timedelta(days=2)).isoformat(),
            "end_date": (date.today() + timedelta(days=30)).isoformat(),
            "contact_name": "李秀梅",
            "contact_mobile": "13838201234",
            "uploads": [
                {"kind": "id_card", "sha256": digests[0]},
                {"kind": "admission_certificate", "sha256": digests[1]},
            ],
        }
        answer = await browser.post("/api/filings", json=body, headers=headers)
        assert answer.status_code == 201, answer.text
        assert answer.json()["started"] is True
        filing_id = answer.json()["filing_id"]
        row = await decided(hall.db, filing_id)
        assert row.status == FilingStatus.REFUSED
        page = (await browser.get("/me/filings")).text
        assert filing_id in page and "未通过" in page
        assert "所选参保险种与参保登记不符：请选择实际参加的险种后重新备案。" in page
        [shown] = (await browser.get("/api/filings")).json()
        assert shown["status"] == "refused" and shown["valid_from"] is None
        assert shown["reasons"] == ["所选参保险种与参保登记不符：请选择实际参加的险种后重新备案。"]

        # Decided, so a corrected one may be submitted; while Temporal does not answer it is
        # recorded, to be started later, and no second one is taken while it is in progress.
        body["insurance_type"] = "employee"
        async with hall.browser(temporal_down=True) as down:
            down.cookies.update(browser.cookies)
            deferred = await down.post("/api/filings", json=body, headers=headers)
        assert deferred.status_code == 201, deferred.text
        assert deferred.json()["started"] is False
        waiting = deferred.json()["filing_id"]
        second = await browser.post("/api/filings", json=body, headers=headers)
        assert second.status_code == 422
        assert second.json()["detail"] == [
            {
                "field": "",
                "label": "",
                "message": f"已有一份异地就医备案正在办理（{waiting}），办结后才能再次提交："
                "请查看该备案的办理进度。",
            }
        ]
        listed = await browser.get("/me/filings")
        assert waiting in listed.text and "审核中" in listed.text
    assert len(await rows_of(hall.db, own)) == 2


async def test_a_desk_files_for_an_applicant_of_its_region_only(hall: Hall) -> None:
    own = await person(hall.db, 621)
    elsewhere = await person(
        hall.db,
        622,
        place="420106",
        region="wuhan",
        insurance_type=InsuranceType.RESIDENT,
    )
    id_card, admission = pdf_scan(1, title="ID 621"), pdf_scan(2, title="Admission 621")
    async with signed_in(hall, "desk-h01") as h01:
        home = await h01.get("/desk")
        assert 'href="/desk/filings"' in home.text
        form = await h01.get("/desk/filing")
        assert form.status_code == 200 and "申请人居民身份证号码" in form.text
        token = await csrf_of(h01, "/desk/filing")
        referral = {
            "filing_type": "referral",
            "province": "河南省",
            "city": "郑州市",
            "end_date": (date.today() + timedelta(days=40)).isoformat(),
            "upload_kind_0": "id_card",
            "upload_kind_1": "admission_certificate",
        }
        refused = await h01.post(
            "/desk/filing",
            data=fields(token, id_number=elsewhere, start_date="", **referral),
            files={
                "file_0": ("身份证.pdf", id_card, "application/pdf"),
                "file_1": ("住院证.pdf", admission, "application/pdf"),
            },
        )
        assert refused.status_code == 400, refused.text
        page = refused.text
        assert "身份证号：该参保人不在本院所在的统筹地区参保，本院不能为其代为申报" in page
        assert "备案开始日期：未填写：请选择备案开始日期。" in page  # told with the rest
        assert "已上传：身份证.pdf（1 页）" in page and "已上传：住院证.pdf（2 页）" in page
        assert await rows_of(hall.db, elsewhere) == []

        token = await csrf_of(h01, "/desk/filing")
        kept = {
            f"{name}_{i}": _hidden(page, f"{name}_{i}")
            for i in (0, 1)
            for name in ("sha256", "name", "pages")
        }
        submitted = await h01.post(
            "/desk/filing", data=fields(token, id_number=own, **referral, **kept)
        )
        assert submitted.status_code == 200, submitted.text
        assert "已代为提交异地就医备案" in submitted.text
        filing_id = filing_id_in(submitted.text)
        row = await decided(hall.db, filing_id)
        assert row.status == FilingStatus.FILED, row.reasons
        listed = await h01.get("/desk/filings")
        assert filing_id in listed.text and "备案成功" in listed.text and "测试" in listed.text
        assert own not in listed.text and "13803981234" not in listed.text
        api_listed = (await h01.get("/api/desk/filings")).json()
        assert [f["filing_id"] for f in api_listed] == [filing_id]

        # The API: the same rules; outside the region refused by field.
        token = (await h01.get("/api/csrf")).json()["csrf_token"]
        outside = await h01.post(
            "/api/desk/filings",
            json={
                "id_number": elsewhere,
                "mobile": "13803981234",
                "insurance_type": "resident",
                "filing_type": "temporary",
                "destination_province": "浙江省",
                "destination_city": "杭州市",
                "start_date": date.today().isoformat(),
                "contact_name": "王建军",
                "contact_mobile": "13957112345",
                "uploads": [{"kind": "id_card", "sha256": kept["sha256_0"]}],
            },
            headers={"X-CSRF-Token": token},
        )
        assert outside.status_code == 422
        assert outside.json()["detail"][0]["field"] == "applicant.id_number"
        assert "不在本院所在的统筹地区参保" in outside.json()["detail"][0]["message"]
        assert await rows_of(hall.db, elsewhere) == []

    # Recorded as the desk user's, on the applicant's behalf.
    applicant = f"applicant:#{await _person_id(hall.db, own)}"
    assert [e.actor for e in await audit_of(hall.db, filing_id, "filing_submitted")] == [
        "hall:desk-h01"
    ]
    [event] = await audit_of(hall.db, filing_id, filing.HALL_SUBMITTED)
    assert (event.actor, event.detail["for_applicant"], event.detail["hospital"]) == (
        "hall:desk-h01",
        applicant,
        "H01",
    )
    assert own not in str(event.detail)

    async with signed_in(hall, "desk-h02") as h02:
        assert filing_id not in (await h02.get("/desk/filings")).text
        assert (await h02.get("/api/desk/filings")).json() == []
    async with hall.browser() as browser:
        await sign_in_applicant(hall, browser, own)
        mine = await browser.get("/me/filings")
        assert filing_id in mine.text and "备案成功" in mine.text


WRONG_ROLE = {
    "/me": "desk-h01",
    "/api/filings": "desk-h01",
    "/desk": "applicant",
    "/api/desk": "applicant",
}


async def test_every_filing_route_refuses_no_session_and_a_wrong_role(hall: Hall) -> None:
    applicant_id = await person(hall.db, 631)
    routes = [r for r in (*filing.pages.routes, *filing.api.routes) if isinstance(r, APIRoute)]
    async with AsyncExitStack() as stack:
        nobody = await stack.enter_async_context(hall.browser())
        desk = await stack.enter_async_context(signed_in(hall, "desk-h01"))
        applicant = await stack.enter_async_context(hall.browser())
        await sign_in_applicant(hall, applicant, applicant_id)
        wrong = {"desk-h01": desk, "applicant": applicant}
        checked = 0
        for route in routes:
            prefix = max((p for p in WRONG_ROLE if route.path.startswith(p)), key=len)
            for method in sorted(route.methods or ()):
                for who, browser in (
                    (None, nobody),
                    (WRONG_ROLE[prefix], wrong[WRONG_ROLE[prefix]]),
                ):
                    api = route.path.startswith("/api")
                    token = await csrf_of(browser)
                    response = await browser.request(
                        method,
                        route.path,
                        headers={"X-CSRF-Token": token},
                        data=None if api else {"csrf_token": token},
                        json={} if api and method == "POST" else None,
                    )
                    if who is None and not api:
                        assert response.status_code == 303, (method, route.path, response.text)
                        assert response.headers["location"] == (
                            "/login?" + urlencode({"next": route.path})
                            if method == "GET"
                            else "/login"
                        )
                    else:
                        expected = 401 if who is None else 403
                        assert response.status_code == expected, (method, route.path, who)
                    checked += 1
        assert checked == 2 * 10  # 6 pages and 4 API operations, as nobody and a wrong role
    async with hall.browser() as browser:
        document = (await browser.get("/api/openapi.json")).json()
    assert {"/api/filings", "/api/desk/filings"} <= set(document["paths"])
    assert set(document["paths"]["/api/filings"]) == {"get", "post"}
    assert not any(p.startswith(("/me", "/desk")) for p in document["paths"])


async def test_jilins_application_form_leads_a_remote_resident_to_the_filing(hall: Hall) -> None:
    """Seed 003: Jilin's remote residents need a valid long-term filing to apply."""
    jilin = await person(hall.db, 641, place="220102", region="jilin")
    async with hall.browser() as browser:
        await sign_in_applicant(hall, browser, jilin)
        form = (await browser.get("/me/apply")).text
        assert 'name="out_of_area"' in form and 'href="/me/filing"' in form
        filing_form = await browser.get("/me/filing")
        assert filing_form.status_code == 200 and "吉林省省直" in filing_form.text

"""`chronic benefit …` on a dev server: a Jilin benefit shown, changed and suspended."""

from __future__ import annotations

import asyncio
import os
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects.postgresql import insert
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from typer.testing import Result

from chronic.certificate import pdf_text
from models.benefit import BenefitView
from models.domain import HospitalGrade
from models.tables import Hospital
from tests import support
from tests.test_cli import Desk, desk  # noqa: F401 - the fixture
from tests.test_regions import JILIN, _jilin_form

CST = timezone(timedelta(hours=8))


async def _jilin_register(desk: Desk) -> str:  # noqa: F811 - the fixture's type
    id_number, _ = await support.insured_person(
        desk.db, place="220102", born=date(1968, 7, 1), sequence=456, region="jilin"
    )
    rows = [
        {
            "code": code,
            "name": f"吉林{code}",
            "level": 3,
            "grade": HospitalGrade.A,
            "region": "jilin",
        }
        for code in (*JILIN.assessment_hospitals, "JL90")
    ]
    async with desk.db.session() as session:  # a seeded world may list them already
        await session.exec(insert(Hospital).values(rows).on_conflict_do_nothing())
    return id_number


async def _until_shown(desk: Desk, app_id: str, within: float = 30) -> Result:  # noqa: F811
    """``chronic benefit show`` once the benefit's workflow answers."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        shown = await desk.cli("benefit", "show", app_id)
        if shown.exit_code == 0 and "records" not in shown.stdout:
            return shown
        assert asyncio.get_running_loop().time() < deadline, shown.output
        await asyncio.sleep(0.3)


async def test_a_clerk_shows_changes_and_suspends_a_jilin_benefit_from_the_cli(
    desk: Desk,  # noqa: F811
) -> None:
    unknown = await desk.cli("benefit", "show", "APP-20260101-NNNNNN")
    assert unknown.exit_code == 1 and "no benefit for APP-20260101-NNNNNN" in unknown.stderr

    person = await _jilin_register(desk)
    form = _jilin_form(person)
    submitted = await desk.cli("submit", desk.file("jilin.json", form.model_dump(mode="json")))
    assert submitted.exit_code == 0, submitted.output
    app_id = submitted.stdout.strip().splitlines()[-1]
    await desk.until(app_id, lambda p: p.stage == "hospital_assessment")
    opinion = await desk.cli("hospital", "opinion", app_id, "-H", "JL02", "--approve", "-o", "符合")
    assert opinion.exit_code == 0, opinion.output
    await desk.until(app_id, lambda p: p.finished_at is not None)

    shown = await _until_shown(desk, app_id)
    assert "benefit active" in shown.stdout and "long-term" in shown.stdout
    assert "JL90" in shown.stdout and "unlimited" in shown.stdout

    outside = await desk.cli("benefit", "change-hospital", app_id, "--hospital", "ZZ99")
    assert outside.exit_code == 1
    assert "no hospital with code ZZ99 in the jilin register" in outside.stderr
    changed = await desk.cli("benefit", "change-hospital", app_id, "--hospital", "JL01")
    assert changed.exit_code == 0, changed.output
    assert "changed designated hospital" in changed.stdout and "JL01" in changed.stdout

    today = datetime.now(CST).date().isoformat()
    admitted = await desk.cli("benefit", "admit", app_id, "--on", today)
    assert admitted.exit_code == 0, admitted.output
    assert f"in hospital since {today}" in admitted.stdout
    again = await desk.cli("benefit", "admit", app_id, "--on", today)
    assert again.exit_code == 1 and f"already admitted on {today}" in again.stderr
    shown = await desk.cli("benefit", "show", app_id)
    assert "benefit suspended" in shown.stdout
    # Operators find it in the UI by status and region (visibility catches up in a moment).
    query = f"BenefitStatus = 'suspended' AND Region = 'jilin' AND WorkflowId = 'benefit-{app_id}'"
    deadline = asyncio.get_running_loop().time() + 15
    while not [e async for e in desk.env.client.list_workflows(query)]:
        assert asyncio.get_running_loop().time() < deadline, "BenefitStatus not visible"
        await asyncio.sleep(0.3)
    discharged = await desk.cli("benefit", "discharge", app_id, "--on", today)
    assert discharged.exit_code == 0, discharged.output
    assert "resumed" in discharged.stdout

    shown = await desk.cli("benefit", "show", app_id, "--json")
    view = BenefitView.model_validate_json(shown.stdout)
    assert (view.status, view.designated_hospital_code) == ("active", "JL01")
    assert [(s.admitted_on.isoformat(), s.discharged_by) for s in view.stays] == [
        (today, view.stays[0].admitted_by)
    ]
    for action in ("benefit_hospital_changed", "benefit_admitted", "benefit_discharged"):
        [actor] = await support.audit_actors(desk.db, app_id, action)
        assert actor.startswith("clerk:")

    # The card, as the person gets it: long-term, at the hospital changed to (Jilin's title).
    card = desk.folder / "card.pdf"
    written = await desk.cli("benefit", "card", app_id, "--out", str(card))
    if written.exit_code == 1 and "no Chinese font" in written.stderr and not os.environ.get("CI"):
        pytest.skip(written.stderr)  # `make test` installs it (make fonts)
    assert written.exit_code == 0, written.output
    text = pdf_text(card.read_bytes())
    assert "门诊慢特病病种待遇认定表" in text and person in text and "长期" in text
    assert ("JL01" not in text and "吉林JL01" in text) or "定点医院" in text
    [writer] = await support.audit_actors(desk.db, app_id, "benefit_card_written")
    assert writer.startswith("operator:")
    png = desk.folder / "card.png"
    assert (await desk.cli("benefit", "card", app_id, "-o", str(png))).exit_code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = await desk.cli("benefit", "card", app_id, "-o", str(desk.folder / "card.doc"))
    assert bad.exit_code == 2 and "must end in .pdf or .png" in bad.output

    # No personal data in the benefit's ID, search attributes or history read without the key.
    plain = Client(
        desk.env.client.service_client,
        namespace=desk.env.client.namespace,
        data_converter=pydantic_data_converter,
    )
    benefit = plain.get_workflow_handle(f"benefit-{app_id}")
    description = await benefit.describe()
    assert description.search_attributes["ApplicantKey"] != [person]
    events = (await benefit.fetch_history()).events
    raw = b"".join(event.SerializeToString() for event in events)
    for text in (person, "13803981234", "测试"):
        assert text.encode() not in raw
        assert all(text not in str(v) for v in description.search_attributes.values())

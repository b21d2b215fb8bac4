"""The clerk's and the expert's commands against a real dev server, Postgres and the workers.

The CLI runs as the operator runs it (typer's CliRunner, each command its own event loop, in a
thread) and finds Temporal and Postgres through the environment; the product's workers run in
this process. One application goes through the whole two-stage review, so the dev server
(shared by the session) sees a single workflow from this module.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from chronic.cli import app
from chronic.cli.applications import render_progress
from chronic.db import Database
from chronic.settings import Settings
from models.domain import (
    ApplicationStatus,
    HospitalGrade,
    InsuranceStatus,
    InsuranceType,
    MaterialKind,
    OfferStatus,
    ReviewStage,
)
from models.messages import OfferView, Progress
from models.tables import Application, AuditEvent, Hospital, InsuredPerson, Offer
from tests import support
from tests.fixtures.scans import ELF_EXECUTABLE, pdf_scan
from tests.fixtures.temporal import running_workers

_APP_ID = re.compile(r"^APP-\d{8}-[2-9A-HJ-NP-Z]{6}$")
_UPDATE_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED,
}


@dataclass
class Desk:
    """The CLI wired to the test's Temporal and database, and what it needs to check results."""

    env: WorkflowEnvironment
    db: Database
    folder: Path
    runner: CliRunner

    async def cli(self, *args: str, input: str | None = None) -> Result:
        """Run ``chronic ARGS`` in a thread (each command runs its own event loop)."""
        result = await asyncio.to_thread(self.runner.invoke, app, list(args), input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def file(self, name: str, content: Any) -> str:
        path = self.folder / name
        path.write_text(json.dumps(content, ensure_ascii=False, indent=2), encoding="utf-8")
        return str(path)

    async def progress(self, application_id: str) -> Progress:
        result = await self.cli("status", application_id, "--json")
        assert result.exit_code == 0, result.output
        return Progress.model_validate_json(result.stdout)

    async def until(
        self, application_id: str, condition: Callable[[Progress], bool], within: float = 30
    ) -> Progress:
        """Poll ``chronic status --json`` until ``condition`` holds."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            progress = await self.progress(application_id)
            if condition(progress):
                return progress
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"condition not met; last progress: {progress!r}")
            await asyncio.sleep(0.2)

    async def update_events(self, application_id: str) -> list[EventType.ValueType]:
        history = await self.env.client.get_workflow_handle(application_id).fetch_history()
        return [e.event_type for e in history.events if e.event_type in _UPDATE_EVENTS]

    async def applications(self) -> int:
        async with self.db.session() as session:
            rows = await session.exec(select(func.count()).select_from(Application))
            return int(rows.one())


@pytest.fixture
async def desk(
    dev_server: WorkflowEnvironment,
    seeded_database: Database,
    tmp_path: Path,
    configured: Callable[..., None],
) -> AsyncIterator[Desk]:
    configured(
        temporal=dev_server.client.service_client.config.target_host,
        database_url=seeded_database.url,
    )
    async with running_workers(dev_server.client, seeded_database, Settings(state_dir=tmp_path)):
        yield Desk(dev_server, seeded_database, tmp_path, CliRunner())


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES_TODAY = date(2026, 11, 23)
"""The "today" the example files were written for (examples/README.md)."""


def _example(name: str) -> dict[str, Any]:
    """An example file, its material dates moved so they are as old today as they were then.

    Intake measures the age of materials against the real date; without the shift the valid
    examples would be returned as too old a year after they were written.
    """
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    shift = date.today() - EXAMPLES_TODAY
    for material in data["materials"]:
        issued = date.fromisoformat(material["issued_on"])
        material["issued_on"] = (issued + shift).isoformat()
    return data


async def test_a_bad_file_lists_every_problem_with_its_path_and_starts_nothing(
    desk: Desk,
) -> None:
    bad = str(EXAMPLES / "invalid-three-mistakes.json")
    workflows_before = (await desk.env.client.count_workflows()).count
    result = await desk.cli("submit", bad)
    assert result.exit_code == 1
    assert f"{bad} is not a valid application (3 problems)" in result.stderr
    assert "applicant.id_number: ID number check digit is wrong" in result.stderr
    assert "disease_code: disease code 'DIABETES' is not in the sanmenxia" in result.stderr
    assert "materials[0].issued_on: issue date 2062-10-15 is in the future" in result.stderr
    assert "411221199001052067" not in result.output  # personal data is never echoed
    assert result.stdout == ""
    assert await desk.applications() == 0
    assert (await desk.env.client.count_workflows()).count == workflows_before

    # The same from standard input; and an unknown application for `status`.
    piped = await desk.cli("submit", "-", input=(EXAMPLES / "invalid-sha256.json").read_text())
    assert piped.exit_code == 1
    assert "standard input is not a valid application (1 problem)" in piped.stderr
    assert "materials[1].sha256: sha256 must be 64 hexadecimal characters" in piped.stderr
    unknown = await desk.cli("status", "APP-20260101-ZZZZZZ")
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == "no application APP-20260101-ZZZZZZ"


async def test_submit_a_jilin_proxy_form_shows_the_proxy_masked_and_refuses_a_pharmacy_not_listed(
    desk: Desk,
) -> None:
    # The example's applicant and hospital in Jilin's register (a seeded one may have them).
    async with desk.db.session() as session:
        if await session.get(Hospital, "JL02") is None:
            session.add(
                Hospital(
                    code="JL02",
                    name="吉林省人民医院",
                    level=3,
                    grade=HospitalGrade.A,
                    region="jilin",
                )
            )
        known = await session.exec(
            select(InsuredPerson).where(InsuredPerson.id_number == "220102198611080325")
        )
        if known.first() is None:
            session.add(
                InsuredPerson(
                    id_number="220102198611080325",
                    name="赵淑珍",
                    mobile="+8613904311234",
                    insurance_type=InsuranceType.EMPLOYEE,
                    insurance_status=InsuranceStatus.NORMAL,
                    region="jilin",
                )
            )
    unlisted = _example("application-jilin-proxy.json") | {"designated_pharmacy": "JLP99"}
    refused = await desk.cli("submit", desk.file("unlisted.json", unlisted))
    assert refused.exit_code == 1
    assert "designated_pharmacy: no pharmacy with code JLP99 in the pharmacy register" in (
        refused.stderr
    )
    assert await desk.applications() == 0

    form = desk.file("jilin.json", _example("application-jilin-proxy.json"))
    submitted = await desk.cli("submit", form)
    assert submitted.exit_code == 0, submitted.output
    app_id = submitted.stdout.strip().splitlines()[-1]
    try:
        assert "proxy      赵* · ID 2201**********2141 · mobile +86139****5678" in submitted.stdout
        assert "pharmacy JLP01" in submitted.stdout
        assert "220104198806072141" not in submitted.output
    finally:
        handle = desk.env.client.get_workflow_handle(app_id)
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("test cleanup")


def test_decide_needs_exactly_one_of_approve_and_reject() -> None:
    runner = CliRunner()
    decide = ["expert", "decide", "APP-X", "--expert", "E001", "--opinion", "x"]
    for flags in (["--approve", "--reject"], []):
        result = runner.invoke(app, [*decide, *flags])
        assert result.exit_code == 2
        # typer draws usage errors in a box; read the words only.
        words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
        assert "give exactly one of --approve or --reject" in words


async def test_submit_review_by_two_experts_through_the_cli_ends_approved(desk: Desk) -> None:
    form = desk.file("application-diabetes.json", _example("application-diabetes.json"))

    submitted = await desk.cli("submit", form)
    assert submitted.exit_code == 0, submitted.output
    lines = submitted.stdout.strip().splitlines()
    app_id = lines[-1]
    assert _APP_ID.match(app_id), submitted.stdout
    assert "王*兰" in submitted.stdout and "4112**********2066" in submitted.stdout
    assert "411221199001052066" not in submitted.stdout
    try:
        # The same person and disease again: refused, naming the open application.

        first = await desk.until(app_id, lambda p: p.current_offer is not None)
        offer = first.current_offer
        assert offer is not None and offer.stage == ReviewStage.INITIAL_REVIEW
        assert first.status == ApplicationStatus.IN_REVIEW

        # The drawn expert finds it in the inbox (visibility is eventually consistent).
        inbox = await _inbox_with(desk, offer.expert, app_id)
        assert "accept or decline by" in inbox.stdout

        # A wrong expert is refused by the validator: one clear line, no update in history.
        wrong = "E001" if offer.expert != "E001" else "E002"
        refused = await desk.cli("expert", "accept", app_id, "--expert", wrong)
        assert refused.exit_code == 1
        assert refused.stderr.strip() == f"application {app_id} is not offered to {wrong}"
        assert await desk.update_events(app_id) == []

        accepted = await desk.cli("expert", "accept", app_id, "--expert", offer.expert)
        assert accepted.exit_code == 0, accepted.output
        # The operator who acted for the expert at the desk is in the audit trail as such.
        async with desk.db.session() as session:
            [on_behalf] = (
                await session.exec(select(AuditEvent).where(AuditEvent.action == "cli_accept"))
            ).all()
        assert on_behalf.actor.startswith("operator:") and on_behalf.application_id == app_id
        assert on_behalf.detail == {"expert": offer.expert, "on_behalf": True}
        assert accepted.stdout.startswith(f"accepted {app_id} (initial_review); decide by 20")
        shown = await desk.cli("status", app_id)
        assert f"#1 initial_review to {offer.expert}" in shown.stdout
        assert "working-day target: due" in shown.stdout and "(on track," in shown.stdout

        # The reviewer asks for more; the clerk brings it; the same reviewer decides.
        asked = await desk.cli(
            "expert",
            "request-materials",
            app_id,
            "-e",
            offer.expert,
            "--note",
            "补充近三个月化验单",
        )
        assert asked.exit_code == 0, asked.output
        assert "the applicant to resubmit materials by" in asked.stdout
        lab = support.material(MaterialKind.LAB_RESULT, "H02")
        resubmitted = await desk.cli(
            "resubmit", app_id, desk.file("more.json", {"materials": [lab]})
        )
        assert resubmitted.exit_code == 0, resubmitted.output
        assert f"resubmitted {app_id}: materials round 2" in resubmitted.stdout
        assert f"{offer.expert} to decide by" in resubmitted.stdout
        decided = await desk.cli(
            "expert", "decide", app_id, "-e", offer.expert, "--approve", "--opinion", "符合认定标准"
        )
        assert decided.exit_code == 0, decided.output
        assert f"approved {app_id} at initial_review by {offer.expert}" in decided.stdout

        second = await desk.until(
            app_id, lambda p: p.current_offer is not None and p.current_offer.seq == 2
        )
        re_review = second.current_offer
        assert re_review is not None and re_review.stage == ReviewStage.RE_REVIEW
        assert re_review.expert != offer.expert
        for action in (
            ["accept", app_id, "--expert", re_review.expert],
            ["decide", app_id, "--expert", re_review.expert, "--approve", "--opinion", "同意"],
        ):
            done = await desk.cli("expert", *action)
            assert done.exit_code == 0, done.output

        final = await desk.until(app_id, lambda p: p.finished_at is not None)
        assert final.status == ApplicationStatus.APPROVED
        assert [o.status for o in final.offers] == [OfferStatus.COMPLETED] * 2
        assert final.benefit is not None

        shown = await desk.cli("status", app_id)
        assert shown.exit_code == 0, shown.output
        assert "status     approved (stage done)" in shown.stdout
        assert "benefit    valid" in shown.stdout and "working-day target: due" in shown.stdout
        assert "Offers" in shown.stdout and "Decisions" in shown.stdout

        late = await desk.cli("expert", "accept", app_id, "--expert", re_review.expert)
        assert late.exit_code == 1
        assert f"application {app_id} is finished (approved)" in late.stderr
    finally:
        handle = desk.env.client.get_workflow_handle(app_id)
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("test cleanup")


async def _inbox_with(desk: Desk, expert: str, app_id: str, within: float = 15) -> Result:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await desk.cli("expert", "inbox", expert)
        assert result.exit_code == 0, result.output
        if app_id in result.stdout:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{app_id} not in the inbox of {expert}: {result.stdout}")
        await asyncio.sleep(0.3)


def test_status_view_shows_offers_decisions_and_the_working_day_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    submitted = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # 14:00 in Sanmenxia
    hour = timedelta(hours=1)
    first = OfferView(
        seq=1,
        stage=ReviewStage.INITIAL_REVIEW,
        expert="E013",
        pool_size=7,
        status=OfferStatus.DECLINED,
        offered_at=submitted,
        accept_deadline=submitted + 24 * hour,
        answered_at=submitted + hour,
        reason="出差",
    )
    second = OfferView(
        seq=2,
        stage=ReviewStage.INITIAL_REVIEW,
        expert="E020",
        pool_size=7,
        status=OfferStatus.ACCEPTED,
        offered_at=submitted + hour,
        accept_deadline=submitted + 25 * hour,
        answered_at=submitted + 2 * hour,
        decision_deadline=submitted + 74 * hour,
    )
    progress = Progress(
        application_id="APP-20261123-7K3QF9",
        region="sanmenxia",
        disease_code="DM",
        status=ApplicationStatus.IN_REVIEW,
        stage=ReviewStage.INITIAL_REVIEW,
        submitted_at=submitted,
        sla_due_at=submitted + timedelta(days=10),
        waiting_for="E020 to decide by 2026-11-26 16:00",
        current_offer=second,
        offers=(first, second),
    )
    render_progress(progress, now=submitted + timedelta(days=2))
    shown = capsys.readouterr().out
    assert "status     in_review (stage initial_review)" in shown
    assert "#2 initial_review to E020 (pool of 7), accepted — decide by 2026-11-26 16:00" in shown
    assert "5–8 working-day target: due 2026-12-03 14:00 (on track, 8 d 0 h left)" in shown
    assert re.search(r"│ 1 +│ initial_review +│ E013 +│ 7 +│ declined +│ 2026-11-23 14:00", shown)
    assert "出差" in shown

    render_progress(progress.model_copy(update={"sla_breached": True}))
    assert "due 2026-12-03 14:00 (BREACHED)" in capsys.readouterr().out


async def test_an_auditor_re_derives_each_draw_and_a_changed_record_is_caught(
    desk: Desk,
) -> None:
    form = desk.file("application-diabetes.json", _example("application-diabetes.json"))
    submitted = await desk.cli("submit", form)
    assert submitted.exit_code == 0, submitted.output
    app_id = submitted.stdout.strip().splitlines()[-1]
    try:
        progress = await desk.until(app_id, lambda p: p.current_offer is not None)
        assert progress.current_offer is not None
        drawn_expert = progress.current_offer.expert
        declined = await desk.cli("expert", "decline", app_id, "-e", drawn_expert, "-r", "出差")
        assert declined.exit_code == 0, declined.output
        await desk.until(
            app_id, lambda p: p.current_offer is not None and p.current_offer.expert != drawn_expert
        )

        audited = await desk.cli("audit", "draw", app_id, "--pool")
        assert audited.exit_code == 0, audited.output
        assert f"{app_id}: 2 offers checked, each as on record" in audited.stdout
        assert audited.stdout.count("✓") == 2

        # Someone changes the expert on record to another of the pool: the auditor sees it.
        async with desk.db.session() as session:
            offer = (
                await session.exec(
                    select(Offer).where(col(Offer.application_id) == app_id, col(Offer.seq) == 1)
                )
            ).one()
            assert drawn_expert in offer.candidates and offer.draw_seed is not None
            other = next(c for c in offer.candidates if c != drawn_expert)
            offer.expert_code = other
            session.add(offer)
        tampered = await desk.cli("audit", "draw", app_id)
        assert tampered.exit_code == 1
        assert f"✗ offer 1: {other} is on record, the draw gives {drawn_expert}" in tampered.stdout
        assert "1 offer(s) do not match their draw" in tampered.stdout
    finally:
        await desk.env.client.get_workflow_handle(app_id).terminate(reason="test cleanup")


def test_every_command_loads_and_says_what_it_does() -> None:
    """The command table names real modules: each command imports and has its help line."""
    from chronic.cli import COMMANDS, load_command

    for name in COMMANDS:
        command = load_command(name)
        assert command is not None and command.name == name
        assert command.help or command.short_help, name
    listing = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert listing.exit_code == 0
    assert all(f" {name} " in listing.stdout for name in COMMANDS)
    unknown = CliRunner().invoke(app, ["sumbit"])
    assert unknown.exit_code == 2 and "No such command 'sumbit'" in unknown.output


def test_a_command_process_loads_only_what_it_uses() -> None:
    """`chronic status` (polled by scripts and tests) does not pay for the demo's Faker or
    the bench: a short command stays short."""
    import subprocess
    import sys

    probe = (
        "import sys; from chronic.cli import load_command; load_command('status'); "
        "print(sorted(m for m in ('faker', 'chronic.bench.driver', 'chronic.demo', "
        "'fastapi') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


async def test_submit_stores_the_scans_named_in_the_form_and_refuses_a_wrong_one(
    desk: Desk,
) -> None:
    """`chronic submit` keeps each named file that is on this machine in the document store,
    as the hall keeps an upload; a file that is not a scan, or a digest that is not the
    file's, stops the submission before anything is recorded."""
    scan = pdf_scan(1)
    (desk.folder / "scans").mkdir()
    (desk.folder / "scans" / "certificate.pdf").write_bytes(scan)
    (desk.folder / "scans" / "lab.pdf").write_bytes(ELF_EXECUTABLE)
    data = _example("application-diabetes.json")
    data["materials"][0].update(
        file="scans/certificate.pdf", sha256=hashlib.sha256(scan).hexdigest()
    )
    data["materials"][1].update(file="scans/lab.pdf")
    refused = await desk.cli("submit", desk.file("with-scans.json", data))
    assert refused.exit_code == 1
    assert "materials[1].file" in refused.stderr
    assert "the content is not a PDF, JPEG or PNG" in refused.stderr
    assert await desk.applications() == 0

    data["materials"][1].update(file="scans/certificate.pdf")  # the digest is another file's
    wrong = await desk.cli("submit", desk.file("with-scans.json", data))
    assert wrong.exit_code == 1
    assert "materials[1].sha256: is not the SHA-256 of" in " ".join(wrong.stderr.split())

    data["materials"][1].update(file="scans/not-on-this-machine.pdf")
    submitted = await desk.cli("submit", desk.file("with-scans.json", data))
    assert submitted.exit_code == 0, submitted.output
    app_id = submitted.stdout.strip().splitlines()[-1]
    try:
        assert "scans      1 of 2 stored encrypted by SHA-256" in submitted.stdout
        kept = [p for p in (desk.folder / "documents").rglob("*") if p.is_file()]
        assert [p.name for p in kept] == [hashlib.sha256(scan).hexdigest()]
        assert scan[:100] not in kept[0].read_bytes()
    finally:
        await desk.env.client.get_workflow_handle(app_id).terminate("test cleanup")

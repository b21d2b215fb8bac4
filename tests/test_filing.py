"""Out-of-area care filing (异地就医备案, seed 001): the form, the process, the long-term check
Jilin's remote applications need (seed 003), and the CLI.

The process runs on the time-skipping server with the product's own workers (one server and a
fresh copy of the seeded database per test), so a temporary filing's six months really pass;
the CLI runs against the session's dev server, with the product's search attributes.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, func, select
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner, Result

from activities.filing import FilingIntakeActivities, valid_long_term_filing
from chronic.cli import app
from chronic.db import Database
from chronic.filings import StartDeferred, SubmissionRefused, submit_filing
from chronic.reconciler import Reconciler
from chronic.settings import Settings
from models.application import CHINA_TIME, FormError
from models.domain import FilingStatus, FilingType, InsuranceType, SmsStatus
from models.filing import (
    FilingCheck,
    FilingCheckRequest,
    FilingForm,
    FilingProgress,
    LongTermFilingQuery,
    parse_filing,
)
from models.tables import AuditEvent, FilingRecord, InsuredPerson, SmsOutbox
from tests import support
from tests.fixtures.temporal import running_workers
from tests.fixtures.world import World
from workers import queues
from workflows.filing import OutOfAreaFilingWorkflow

# No resolve(): the workflow sandbox may re-import this module and forbids Path.resolve.
EXAMPLES = Path(__file__).parent.parent / "examples"
EXAMPLES_TODAY = date(2026, 11, 23)
"""The "today" the example files were written for (examples/README.md)."""
DAY = timedelta(days=1)
_FILING_ID = re.compile(r"^FIL-\d{8}-[2-9A-HJ-NP-Z]{6}$")

Handle = WorkflowHandle[OutOfAreaFilingWorkflow, FilingProgress]

INVALID = {
    "filing-invalid-four-mistakes.json": {
        "applicant.id_number",
        "destination",
        "end_date",
        "uploads[0].sha256",
    },
}
VALID = {
    "filing-referral.json": FilingType.REFERRAL,
    "filing-long-term.json": FilingType.LONG_TERM_RESIDENCE,
}


def example(name: str = "filing-referral.json", **changes: Any) -> dict[str, Any]:
    """An example filing as data, its dates moved to lie as far from today as from the day it
    was written; ``changes`` replace top-level fields (``applicant__id_number`` a nested one;
    ``...`` removes one)."""
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    shift = date.today() - EXAMPLES_TODAY
    for key in ("start_date", "end_date"):
        if data.get(key):
            data[key] = (date.fromisoformat(data[key]) + shift).isoformat()
    for key, value in changes.items():
        outer, _, inner = key.partition("__")
        where, name = (data[outer], inner) if inner else (data, outer)
        if value is ...:
            del where[name]
        else:
            where[name] = value
    return data


def filing(name: str = "filing-referral.json", **changes: Any) -> FilingForm:
    return FilingForm.model_validate(example(name, **changes))


async def submit(world: World, form: FilingForm) -> Handle:
    """Submit as the CLI does, on a server without the product's search attributes."""
    filing_id = await submit_filing(
        form,
        client=world.env.client,
        db=world.db,
        settings=world.settings,
        actor="operator:test",
        search_attributes=False,
    )
    return world.env.client.get_workflow_handle_for(OutOfAreaFilingWorkflow.run, filing_id)


async def row(db: Database, filing_id: str) -> FilingRecord:
    async with db.session() as session:
        found = await session.get(FilingRecord, filing_id)
        assert found is not None
        return found


async def until_row(
    db: Database, filing_id: str, condition: Callable[[FilingRecord], bool], within: float = 20
) -> FilingRecord:
    """The filing's row once ``condition`` holds (activities run in real time)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await row(db, filing_id)
        if condition(found):
            return found
        assert asyncio.get_running_loop().time() < deadline, f"not reached; row: {found!r}"
        await asyncio.sleep(0.1)


async def sent(db: Database, filing_id: str, template: str, within: float = 20) -> SmsOutbox:
    """The filing's one SMS of ``template``, once its delivery has sent it."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with db.session() as session:
            rows = list(
                await session.scalars(
                    sa.select(SmsOutbox).where(col(SmsOutbox.filing_id) == filing_id)
                )
            )
        done = [r for r in rows if r.template == template and r.status == SmsStatus.SENT]
        if done:
            assert len(rows) == 1, [(r.template, r.status) for r in rows]  # one SMS per filing
            return done[0]
        assert asyncio.get_running_loop().time() < deadline, f"no {template} SMS sent"
        await asyncio.sleep(0.2)


async def audit(db: Database, filing_id: str) -> list[tuple[str, str]]:
    async with db.session() as session:
        rows = await session.exec(
            select(AuditEvent.action, AuditEvent.actor)
            .where(AuditEvent.filing_id == filing_id)
            .order_by(col(AuditEvent.id))
        )
        return [(action, actor) for action, actor in rows.all()]


async def person_id(db: Database, id_number: str) -> int:
    async with db.session() as session:
        found = await session.scalar(
            sa.select(col(InsuredPerson.id)).where(col(InsuredPerson.id_number) == id_number)
        )
        assert found is not None
        return int(found)


# ---- the form -------------------------------------------------------------------------------


def test_every_filing_example_has_an_expected_outcome() -> None:
    assert {p.name for p in EXAMPLES.glob("filing-*.json")} == set(VALID) | set(INVALID)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_filing_examples_parse(name: str) -> None:
    form = parse_filing((EXAMPLES / name).read_bytes())
    assert form.filing_type == VALID[name]
    assert form.applicant.mobile.startswith("+86") and form.contact.mobile.startswith("+86")
    assert form.place.region == "sanmenxia"


def test_a_bad_filing_gets_every_problem_with_its_path_and_no_personal_data() -> None:
    name = "filing-invalid-four-mistakes.json"
    with pytest.raises(FormError) as caught:
        parse_filing((EXAMPLES / name).read_bytes())
    problems = {p.path: p.message for p in caught.value.problems}
    assert set(problems) == INVALID[name]
    assert "check digit is wrong" in problems["applicant.id_number"]
    assert "is the insured place itself" in problems["destination"]
    assert "long-term and has no end date" in problems["end_date"]
    assert "64 hexadecimal characters, not 63" in problems["uploads[0].sha256"]
    shown = str(caught.value)
    assert "411202199204101288" not in shown and "13838201234" not in shown


def test_the_form_checks_what_the_file_alone_can_say() -> None:
    start = date(2026, 12, 1)

    def paths(**changes: Any) -> dict[str, str]:
        data = example(**changes)
        data["start_date"] = start.isoformat()
        with pytest.raises(FormError) as caught:
            parse_filing(json.dumps(data, ensure_ascii=False))
        return {p.path: p.message for p in caught.value.problems}

    # A province people write short is the province; one that does not exist is named.
    short = FilingForm.model_validate(example(destination={"province": "浙江", "city": "杭州"}))
    assert short.destination.label == "浙江省杭州"
    assert (
        "not a mainland province-level division"
        in paths(destination={"province": "火星省", "city": "杭州市"})["destination.province"]
    )
    # The city is text a person typed: an ID number or a mobile in it is refused.
    assert (
        "mobile number"
        in paths(destination={"province": "浙江省", "city": "13812345678"})["destination.city"]
    )
    # A temporary filing may end, within its period and not before it starts.
    assert "at most 180 days" in paths(end_date=(start + 180 * DAY).isoformat())["end_date"]
    assert "before the start date" in paths(end_date=(start - DAY).isoformat())["end_date"]
    assert "no uploads" in paths(uploads=[])["uploads"]
    assert "not one this office serves" in paths(insured_place="110000")["insured_place"]
    assert "required field is missing" in paths(filing_type=...)["filing_type"]
    assert "must be a JSON object" in paths(contact="李秀梅")["contact"]
    assert "`chronic schema filing`" in paths(destination=...)["destination"]


# ---- the process ----------------------------------------------------------------------------


async def test_a_referral_is_filed_told_by_sms_and_marked_expired_after_its_period(
    world: World,
) -> None:
    form = filing()
    handle = await submit(world, form)
    end = form.start_date + 179 * DAY

    filed = await until_row(world.db, handle.id, lambda r: r.status == FilingStatus.FILED)
    assert (filed.valid_from, filed.valid_to) == (form.start_date, end)
    assert filed.closed_at is not None and filed.reasons == []
    message = await sent(world.db, handle.id, "filing_filed")
    assert message.dedup_key == f"{handle.id}:filed"
    assert message.recipient == "+8613903985678"  # the mobile on the form
    assert message.params["destination"] == "河南省郑州市"
    assert message.params["validity"] == f"{form.start_date}至{end}"
    assert f"编号{handle.id}" in message.params["text"]
    progress = await handle.query(OutOfAreaFilingWorkflow.progress)
    assert progress.status == FilingStatus.FILED and progress.finished_at is None
    assert progress.waiting_for == f"valid until {end}; then marked expired"

    # Six months later (the time-skipping server jumps there): marked expired, and done.
    await world.env.sleep(end - date.today() + 2 * DAY)
    result = await handle.result()
    assert result.status == FilingStatus.EXPIRED and result.finished_at is not None
    expired = await row(world.db, handle.id)
    assert expired.status == FilingStatus.EXPIRED and expired.expired_at is not None
    # At midnight after its last day, Beijing time.
    midnight = datetime.combine(end + DAY, time(0), tzinfo=CHINA_TIME)
    assert timedelta(0) <= expired.expired_at - midnight < timedelta(minutes=1)
    assert await audit(world.db, handle.id) == [
        ("filing_submitted", "operator:test"),
        ("filing_filed", "system"),
        ("filing_expired", "system"),
    ]


async def test_a_long_term_filing_has_no_end_and_answers_jilins_question(world: World) -> None:
    form = filing("filing-long-term.json")
    handle = await submit(world, form)

    result = await handle.result()
    assert result.status == FilingStatus.FILED
    assert (result.valid_from, result.valid_to) == (form.start_date, None)
    message = await sent(world.db, handle.id, "filing_filed")
    assert message.params["validity"] == f"{form.start_date}起长期有效"
    assert message.params["destination"] == "浙江省杭州市"

    who = await person_id(world.db, support.WANG)
    async with world.db.session() as session:
        ref = await valid_long_term_filing(session, who, form.start_date + 3000 * DAY)
        before = await valid_long_term_filing(session, who, form.start_date - DAY)
    assert ref is not None and ref.filing_id == handle.id
    assert ref.filing_type == FilingType.LONG_TERM_RESIDENCE and ref.valid_to is None
    assert (ref.destination_province, ref.destination_city) == ("浙江省", "杭州市")
    assert before is None  # not valid before it starts
    # The same question as an activity, for workflows (intake role).
    asked = await FilingIntakeActivities(world.db).valid_long_term_filing(
        LongTermFilingQuery(person_id=who, on=form.start_date)
    )
    assert asked == ref


async def test_a_refused_filing_gets_every_reason_and_an_sms(world: World) -> None:
    # 刘芳: insurance suspended, employee insurance, insured in Sanmenxia. The filing names
    # Wuhan, resident insurance, starts 40 days ago, ended 5 days ago and lacks the admission
    # certificate.
    form = filing(
        applicant__id_number=support.LIU_SUSPENDED,
        insured_place="420100",
        start_date=(date.today() - 40 * DAY).isoformat(),
        end_date=(date.today() - 5 * DAY).isoformat(),
        uploads=[example()["uploads"][0]],  # the ID card only
    )
    handle = await submit(world, form)

    result = await handle.result()
    assert result.status == FilingStatus.REFUSED
    refused = await row(world.db, handle.id)
    assert refused.status == FilingStatus.REFUSED and refused.closed_at is not None
    assert refused.valid_from is None
    reasons = refused.reasons
    assert list(result.reasons) == reasons and len(reasons) == 6, reasons
    assert reasons[0].startswith("insurance status is suspended")
    assert "does not insure this person in 湖北省武汉市" in reasons[1]
    assert (
        "names urban-rural resident (城乡居民医保) insurance, the register has employee"
        in (reasons[2])
    )
    assert "more than 30 days before the filing was submitted" in reasons[3]
    assert "had passed when the filing was submitted" in reasons[4]
    assert reasons[5] == (
        "the uploads lack the admission certificate (住院证) or the referral letter (转诊证明): "
        "a referral filing needs one of them"
    )
    message = await sent(world.db, handle.id, "filing_refused")
    assert message.params["reason"].startswith("insurance status is suspended")
    assert len(message.params["reason"]) <= 60


async def test_one_filing_in_progress_per_person_and_a_recorded_one_is_started_later(
    world: World,
) -> None:
    form = filing()
    # Temporal away at submission: recorded, not started.
    with pytest.raises(StartDeferred) as deferred:
        await submit_filing(form, client=None, db=world.db, settings=world.settings)
    filing_id = deferred.value.application_id
    assert _FILING_ID.match(filing_id)
    # The same person again while it is in progress: refused, naming it; nothing recorded.
    with pytest.raises(SubmissionRefused, match=f"already has a filing in progress: {filing_id}"):
        await submit(world, form)
    async with world.db.session() as session:
        count = await session.scalar(sa.select(func.count()).select_from(FilingRecord))
    assert count == 1
    # An ID number the register does not know: refused at the door.
    stranger = filing(applicant__id_number="110101199003074477")
    with pytest.raises(SubmissionRefused, match=r"applicant\.id_number: no insured person"):
        await submit(world, stranger)

    reconciler = Reconciler(
        world.db, world.env.client, world.settings, min_age=timedelta(0), search_attributes=False
    )
    report = await reconciler.run_once()
    assert filing_id in report.started
    filed = await until_row(world.db, filing_id, lambda r: r.status == FilingStatus.FILED)
    assert filed.valid_from == form.start_date
    await sent(world.db, filing_id, "filing_filed")


@activity.defn(name="check_filing")
async def _broken_check(request: FilingCheckRequest) -> FilingCheck:
    raise ApplicationError(
        "the register cannot be read for this filing", type="RegisterBroken", non_retryable=True
    )


async def test_a_check_failing_for_good_closes_the_filing_and_tells_the_person(
    world: World,
) -> None:
    await world.stop_workers()
    await world.start_workers("orchestration", "review", "notification")
    async with Worker(world.env.client, task_queue=queues.INTAKE, activities=[_broken_check]):
        handle = await submit(world, filing())
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert "the register cannot be read" in str(failed.value.cause)

    closed = await row(world.db, handle.id)
    assert closed.status == FilingStatus.CLOSED and closed.closed_at is not None
    assert closed.reasons == ["processing failed; the office has been alerted"]
    message = await sent(world.db, handle.id, "filing_closed")
    assert message.dedup_key == f"{handle.id}:closed"
    assert message.params["reason"] == "processing failed; the office has been alerted"


async def test_a_filing_cancelled_before_its_decision_is_closed_and_told(world: World) -> None:
    await world.stop_workers()
    await world.start_workers("orchestration", "review", "notification")  # no intake: it waits
    handle = await submit(world, filing())
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()

    closed = await row(world.db, handle.id)
    assert closed.status == FilingStatus.CLOSED and closed.reasons == ["cancelled by an operator"]
    await sent(world.db, handle.id, "filing_closed")
    assert await audit(world.db, handle.id) == [
        ("filing_submitted", "operator:test"),
        ("filing_closed", "operator"),
    ]


# ---- Jilin's question: a valid long-term filing on a date ----------------------------------------


@pytest.mark.parametrize(
    ("case", "status", "kind", "starts", "ends", "valid"),
    [
        ("filed long-term", "filed", "long_term_residence", -10, None, True),
        ("resettled, ends later", "filed", "retired_resettled", -10, 10, True),
        ("stationed, ends today", "filed", "stationed_worker", -10, 0, True),
        ("marked expired", "expired", "long_term_residence", -10, None, False),
        ("past its end", "filed", "stationed_worker", -100, -1, False),
        ("a referral (temporary)", "filed", "referral", -10, 100, False),
        ("a temporary outing", "filed", "temporary", -10, 100, False),
        ("starts tomorrow", "filed", "long_term_residence", 1, None, False),
        ("refused", "refused", "long_term_residence", None, None, False),
        ("closed undecided", "closed", "long_term_residence", None, None, False),
    ],
)
async def test_valid_long_term_filing(
    seeded_database: Database,
    case: str,
    status: str,
    kind: str,
    starts: int | None,
    ends: int | None,
    valid: bool,
) -> None:
    today = date(2027, 3, 1)
    who = await person_id(seeded_database, support.ZHANG)
    async with seeded_database.session() as session:
        session.add(
            FilingRecord(
                id="FIL-20270101-TEST01",
                person_id=who,
                mobile="+8615038921357",
                insured_place="411200",
                destination_province="广东省",
                destination_city="深圳市",
                insurance_type=InsuranceType.RESIDENT,
                filing_type=FilingType(kind),
                start_date=today + (starts or -10) * DAY,
                contact_name="张三",
                contact_mobile="+8613838201234",
                status=FilingStatus(status),
                valid_from=None if starts is None else today + starts * DAY,
                valid_to=None if ends is None else today + ends * DAY,
                submitted_at=datetime.now(UTC),
                closed_at=datetime.now(UTC),
            )
        )
    async with seeded_database.session() as session:
        found = await valid_long_term_filing(session, who, today)
        someone_else = await valid_long_term_filing(session, who + 1, today)
    assert (found is not None) == valid, case
    assert someone_else is None
    if found is not None:
        assert found.filing_id == "FIL-20270101-TEST01" and found.destination_city == "深圳市"


# ---- the CLI --------------------------------------------------------------------------------


async def _cli(runner: CliRunner, *args: str) -> Result:
    result = await asyncio.to_thread(runner.invoke, app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


async def test_cli_submits_a_filing_and_shows_where_it_stands(
    dev_server: WorkflowEnvironment,
    seeded_database: Database,
    tmp_path: Path,
    configured: Callable[..., None],
) -> None:
    configured(
        temporal=dev_server.client.service_client.config.target_host,
        database_url=seeded_database.url,
        CHRONIC_OPERATOR="li.wei",
    )
    runner = CliRunner()
    async with running_workers(dev_server.client, seeded_database, Settings(state_dir=tmp_path)):
        # A bad file: every problem with its path, nothing recorded, nothing started.
        bad = str(EXAMPLES / "filing-invalid-four-mistakes.json")
        workflows_before = (await dev_server.client.count_workflows()).count
        refused = await _cli(runner, "filing", "submit", bad)
        assert refused.exit_code == 1
        assert f"{bad} is not a valid filing (4 problems)" in refused.stderr
        for path in INVALID["filing-invalid-four-mistakes.json"]:
            assert f"{path}: " in refused.stderr
        assert "411202199204101288" not in refused.output and refused.stdout == ""
        async with seeded_database.session() as session:
            assert await session.scalar(sa.select(func.count()).select_from(FilingRecord)) == 0
        assert (await dev_server.client.count_workflows()).count == workflows_before

        good = tmp_path / "filing.json"
        good.write_text(json.dumps(example("filing-long-term.json"), ensure_ascii=False))
        submitted = await _cli(runner, "filing", "submit", str(good))
        assert submitted.exit_code == 0, submitted.output
        filing_id = submitted.stdout.strip().splitlines()[-1]
        assert _FILING_ID.match(filing_id), submitted.stdout
        assert "王*兰" in submitted.stdout and "4112**********2066" in submitted.stdout
        assert "411221199001052066" not in submitted.stdout
        assert "long_term_residence (long-term) · 河南省三门峡市 → 浙江省杭州市" in submitted.stdout

        deadline = asyncio.get_running_loop().time() + 30
        while True:
            shown = await _cli(runner, "filing", "status", filing_id, "--json")
            assert shown.exit_code == 0, shown.output
            view = json.loads(shown.stdout)
            if view["process"] == "completed":
                break
            assert asyncio.get_running_loop().time() < deadline, view
            await asyncio.sleep(0.3)
        assert view["status"] == "filed" and view["long_term"] is True
        assert view["valid_to"] is None and view["destination"] == "浙江省杭州市"
        assert view["uploads"] == ["id_card", "residence_proof"]
        text = await _cli(runner, "filing", "status", filing_id)
        assert text.exit_code == 0, text.output
        assert "status     filed" in text.stdout
        assert "→ long-term (until cancelled)" in text.stdout
        assert "process    completed" in text.stdout

        unknown = await _cli(runner, "filing", "status", "FIL-20260101-ZZZZZZ")
        assert unknown.exit_code == 1
        assert unknown.stderr.strip() == "no filing FIL-20260101-ZZZZZZ"

        description = await dev_server.client.get_workflow_handle(filing_id).describe()
    assert description.search_attributes["ChronicStatus"] == ["filed"]
    assert description.search_attributes["Region"] == ["sanmenxia"]
    for value in description.search_attributes.values():
        assert all("411221199001052066" not in str(v) and "王秀兰" not in str(v) for v in value)
    assert await audit(seeded_database, filing_id) == [
        ("filing_submitted", "operator:li.wei"),
        ("filing_filed", "system"),
    ]

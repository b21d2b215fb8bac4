"""Audit sampling (抽审, seed 002 四): at least the policy's share of a period's approvals,
redrawn by anyone from the kept seed; a forged finding revokes the benefit and tells the person."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import col
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from chronic import audits
from chronic.cli import app
from chronic.db import Database
from chronic.settings import Settings
from models.domain import ApplicationStatus, ReviewStage, SmsStatus
from models.draw import audit_sample, audit_seed, sample_size
from models.notifications import SmsTemplate
from models.tables import Application, AuditEvent, Benefit, InsuredPerson, SmsOutbox
from tests import support
from tests.fixtures.temporal import running_workers

BEIJING = timezone(timedelta(hours=8))


@given(
    population=st.lists(st.from_regex(r"APP-2026\d{4}-[A-Z0-9]{6}", fullmatch=True), unique=True),
    rate=st.floats(min_value=0, max_value=1),
    data=st.data(),
)
def test_a_sample_takes_at_least_the_share_and_depends_only_on_what_is_kept(
    population: list[str], rate: float, data: st.DataObject
) -> None:
    seed = audit_seed(b"office-key", "sanmenxia", "2026-11")
    drawn = audit_sample(population, rate, seed)
    assert len(drawn) == sample_size(len(population), rate) >= math.floor(len(population) * rate)
    assert len(drawn) >= len(population) * rate - 1e-9
    assert set(drawn) <= set(population) and drawn == sorted(drawn)
    assert audit_sample(data.draw(st.permutations(population)), rate, seed) == drawn


def test_ten_percent_of_25_is_3_and_the_seed_is_the_offices() -> None:
    assert sample_size(25, 0.10) == 3 and sample_size(20, 0.10) == 2 and sample_size(0, 0.1) == 0
    assert audit_seed(b"a", "sanmenxia", "2026-11") != audit_seed(b"b", "sanmenxia", "2026-11")


async def _approvals(db: Database, month_day: datetime, count: int, prefix: str) -> list[str]:
    """``count`` approved applications closed on ``month_day`` (one person, distinct ids)."""
    async with db.session() as session:
        person = await session.scalar(
            sa.select(col(InsuredPerson.id)).where(col(InsuredPerson.id_number) == support.WANG)
        )
        assert person is not None
        ids = [f"APP-{month_day:%Y%m%d}-{prefix}{n:03d}" for n in range(count)]
        for app_id in ids:
            session.add(
                Application(
                    id=app_id,
                    region="sanmenxia",
                    person_id=person,
                    disease_code="DM",
                    year=month_day.year,
                    status=ApplicationStatus.APPROVED,
                    stage=ReviewStage.RE_REVIEW,
                    mobile="+8613800000000",
                    case_number="BA1",
                    diagnosing_hospital_code="H01",
                    designated_hospital_code="H01",
                    submitted_at=month_day - timedelta(days=7),
                    closed_at=month_day,
                )
            )
            session.add(
                Benefit(
                    application_id=app_id,
                    person_id=person,
                    disease_code="DM",
                    designated_hospital_code="H01",
                    valid_from=month_day.date(),
                    valid_to=month_day.date() + timedelta(days=730),
                )
            )
    return ids


async def test_a_period_is_drawn_once_and_redraws_the_same(seeded_database: Database) -> None:
    november = await _approvals(
        seeded_database, datetime(2026, 11, 10, 10, tzinfo=BEIJING), 25, "N"
    )
    # Approved on 31 October 23:30 in Beijing: October's, not November's.
    await _approvals(seeded_database, datetime(2026, 10, 31, 23, 30, tzinfo=BEIJING), 2, "O")
    now = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)

    async def draw(key: bytes) -> audits.Drawn:
        async with seeded_database.session() as session:
            return await audits.draw_sample(
                session,
                region="sanmenxia",
                period="2026-11",
                rate=0.10,
                key=key,
                zone=BEIJING,
                now=now,
                actor="system:schedule",
            )

    first = await draw(b"office-key")
    assert first.created and first.sample.population == sorted(november)
    sampled = [t.application_id for t in first.tasks]
    assert len(sampled) == 3 and all(t.status == "open" for t in first.tasks)
    assert audits.redraw(first.sample) == sampled
    # Drawn once: a second run (another key even) returns the kept sample unchanged.
    again = await draw(b"another-key")
    assert not again.created and [t.application_id for t in again.tasks] == sampled
    async with seeded_database.session() as session:
        event = await session.scalar(
            sa.select(AuditEvent).where(col(AuditEvent.action) == "audit_sampled")
        )
    assert event is not None and event.detail["sampled"] == sampled
    assert event.detail["seed"] == first.sample.seed


@pytest.fixture
async def desk(
    dev_server: WorkflowEnvironment,
    seeded_database: Database,
    tmp_path: Path,
    configured: Callable[..., None],
) -> AsyncIterator[Callable[..., asyncio.Future[Result]]]:
    configured(
        temporal=dev_server.client.service_client.config.target_host,
        database_url=seeded_database.url,
        CHRONIC_OPERATOR="auditor-li",
    )
    async with running_workers(
        dev_server.client,
        seeded_database,
        Settings(state_dir=tmp_path),
        roles=("orchestration", "notification"),
    ):

        def cli(*args: str) -> asyncio.Future[Result]:
            return asyncio.ensure_future(asyncio.to_thread(CliRunner().invoke, app, list(args)))

        yield cli


async def test_the_office_works_through_the_sample_and_a_forged_finding_revokes_and_tells(
    desk: Callable[..., asyncio.Future[Result]], seeded_database: Database
) -> None:
    today = datetime.now(UTC).astimezone(BEIJING)
    last_month = today.replace(day=1) - timedelta(days=1)
    period = f"{last_month:%Y-%m}"
    await _approvals(seeded_database, last_month.replace(hour=10), 12, "C")

    drawn = await desk("audit", "sample", "--period", period, "--verify")
    assert drawn.exit_code == 0, drawn.output
    assert f"sanmenxia {period}: 2 of 12 approvals sampled at 10% (drawn now)" in drawn.stdout
    assert "✓ redrawn from the seed" in drawn.stdout
    shown = await desk("audit", "sample", "--period", period)
    assert "(drawn 20" in shown.stdout  # the kept one, not a new draw

    listed = await desk("audit", "list", "--open")
    assert listed.exit_code == 0, listed.output
    async with seeded_database.session() as session:
        tasks = (
            await session.execute(sa.text("SELECT id, application_id FROM audit_task ORDER BY id"))
        ).all()
    assert len(tasks) == 2
    (ok_id, _), (forged_id, forged_app) = tasks

    personal = await desk("audit", "decide", str(ok_id), "--ok", "--note", "电话13812345678核实")
    assert personal.exit_code == 1 and "mobile" in personal.output
    fine = await desk("audit", "decide", str(ok_id), "--ok", "--note", "原件核对无误")
    assert fine.exit_code == 0 and "ok" in fine.stdout
    twice = await desk("audit", "decide", str(ok_id), "--forged", "--note", "复核")
    assert twice.exit_code == 1 and "decided already (ok by operator:auditor-li" in twice.output

    since = (today.date() + timedelta(days=1)).isoformat()
    forged = await desk(
        "audit",
        "decide",
        str(forged_id),
        "--forged",
        "--note",
        "诊断证明系伪造",
        "--revoke-from",
        since,
    )
    assert forged.exit_code == 0, forged.output
    assert f"benefit revoked from {since}" in forged.stdout
    async with seeded_database.session() as session:
        benefit = await session.scalar(
            sa.select(Benefit).where(col(Benefit.application_id) == forged_app)
        )
        actions = list(
            await session.scalars(
                sa.select(col(AuditEvent.actor) + ":" + col(AuditEvent.action)).where(
                    col(AuditEvent.application_id).isnot(None)
                )
            )
        )
    assert benefit is not None and benefit.status == "revoked"
    assert benefit.valid_to == date.fromisoformat(since)
    assert (
        "operator:auditor-li:audit_forged" in actions and "operator:auditor-li:audit_ok" in actions
    )

    for _ in range(200):
        async with seeded_database.session() as session:
            sms = await session.scalar(
                sa.select(SmsOutbox).where(
                    col(SmsOutbox.application_id) == forged_app,
                    col(SmsOutbox.template) == SmsTemplate.BENEFIT_REVOKED,
                )
            )
        if sms is not None and sms.status == SmsStatus.SENT:
            break
        await asyncio.sleep(0.1)
    assert sms is not None and sms.status == SmsStatus.SENT
    assert sms.params["date"] == since

"""The monthly expert statistic as the office runs it: a Temporal Schedule starts
``ExpertMonthReport``, which keeps each hospital's report and tells each hospital by SMS."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
)
from temporalio.testing import WorkflowEnvironment

from chronic import schedules
from chronic.db import Database
from chronic.settings import Settings
from chronic.submission import submit
from models.notifications import SmsTemplate
from models.oversight import AuditSampleDrawn, ExpertMonthRecorded, ExpertMonthRequest
from models.policy import load_policy
from models.tables import ExpertReport, Hospital, Offer, SmsOutbox
from tests import support
from tests.fixtures.temporal import running_workers
from workers import queues
from workflows.application import ApplicationWorkflow
from workflows.oversight import ExpertMonthReport

BEIJING = timezone(timedelta(hours=8))


@pytest.fixture
async def office(
    dev_server: WorkflowEnvironment, seeded_database: Database, tmp_path: Path
) -> AsyncIterator[Client]:
    since = datetime.now(UTC) - timedelta(seconds=5)
    async with running_workers(dev_server.client, seeded_database, Settings(state_dir=tmp_path)):
        yield dev_server.client
        await support.terminate_started_since(dev_server.client, since)


async def _reports(db: Database, month: str) -> dict[str, list[dict[str, str]]]:
    async with db.session() as session:
        rows = (
            await session.scalars(sa.select(ExpertReport).where(col(ExpertReport.month) == month))
        ).all()
    return {r.hospital_code: list(csv.DictReader(io.StringIO(r.csv))) for r in rows}


async def _month_sms(db: Database, month: str, count: int) -> list[SmsOutbox]:
    for _ in range(200):
        async with db.session() as session:
            rows = (
                await session.scalars(
                    sa.select(SmsOutbox).where(
                        col(SmsOutbox.template) == SmsTemplate.EXPERT_MONTH_REPORT,
                        col(SmsOutbox.dedup_key).contains(f":{month}:"),
                    )
                )
            ).all()
        if len(rows) >= count:
            return list(rows)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(rows)} of {count} monthly SMS in the outbox")


async def test_the_month_is_counted_kept_per_hospital_and_each_hospital_told(
    office: Client, seeded_database: Database, tmp_path: Path
) -> None:
    app_id = await submit(
        support.form(support.WANG, "DM"),
        client=office,
        db=seeded_database,
        settings=Settings(state_dir=tmp_path),
    )
    handle = office.get_workflow_handle_for(ApplicationWorkflow.run, app_id)
    offer = await support.pending_offer(handle)
    month = f"{datetime.now(UTC).astimezone(BEIJING):%Y-%m}"

    result = await office.execute_workflow(
        ExpertMonthReport.run,
        ExpertMonthRequest(region="sanmenxia", month=month),
        id=f"expert-month-report:test:{month}",
        task_queue=queues.APPLICATIONS,
    )
    assert isinstance(result, ExpertMonthRecorded) and result.month == month
    async with seeded_database.session() as session:
        offered_to = await session.scalar(
            sa.select(col(Offer.expert_code)).where(col(Offer.application_id) == app_id)
        )
        with_desk = set(
            await session.scalars(
                sa.select(col(Hospital.code)).where(col(Hospital.notice_mobile).isnot(None))
            )
        )
    assert offered_to == offer.expert
    reports = await _reports(seeded_database, month)
    lines = {line["expert_code"]: line for rows in reports.values() for line in rows}
    assert lines[offer.expert]["offers"] == "1"
    totals = {h.hospital_code: h for h in result.hospitals}
    assert set(totals) == set(reports)
    assert sum(h.offers for h in result.hospitals) >= 1

    told = [h for h in result.hospitals if h.notice_mobile]
    assert told and {h.hospital_code for h in told} <= with_desk
    sms = await _month_sms(seeded_database, month, len(told))
    assert {s.dedup_key for s in sms} == {
        f"expert-month:sanmenxia:{month}:{h.hospital_code}" for h in told
    }
    # A second run of the same month rewrites the reports and sends nothing twice.
    await office.execute_workflow(
        ExpertMonthReport.run,
        ExpertMonthRequest(region="sanmenxia", month=month),
        id=f"expert-month-report:test:{month}:again",
        task_queue=queues.APPLICATIONS,
    )
    assert len(await _month_sms(seeded_database, month, len(told))) == len(told)


async def test_the_schedules_are_ensured_idempotently_and_triggered_runs_cover_last_month(
    office: Client, seeded_database: Database
) -> None:
    policy = load_policy("sanmenxia")
    first = await schedules.ensure(office, policy)
    again = await schedules.ensure(office, policy)
    ids = [e.schedule_id for e in first]
    try:
        assert ids == ["expert-month-report:sanmenxia", "audit-sample:sanmenxia"]
        assert all(e.created for e in first) and not any(e.created for e in again)
        today = datetime.now(UTC).astimezone(BEIJING).date()
        last = f"{today.replace(day=1) - timedelta(days=1):%Y-%m}"
        results = {}
        for schedule_id, day, workflow_type in zip(
            ids, (1, 2), ("ExpertMonthReport", "AuditSampleWorkflow"), strict=True
        ):
            handle = office.get_schedule_handle(schedule_id)
            described = await handle.describe()
            calendar = described.schedule.spec.calendars[0]
            assert [r.start for r in calendar.day_of_month] == [day]
            assert [r.start for r in calendar.hour] == [8]
            assert described.schedule.spec.time_zone_name == "Etc/GMT-8"
            next_run = described.info.next_action_times[0].astimezone(BEIJING)
            assert (next_run.day, next_run.hour, next_run.minute) == (day, 8, 0)
            action = described.schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert action.workflow == workflow_type

            await handle.trigger()
            for _ in range(100):
                recent = (await handle.describe()).info.recent_actions
                if recent:
                    break
                await asyncio.sleep(0.1)
            started = recent[0].action
            assert isinstance(started, ScheduleActionExecutionStartWorkflow)
            results[workflow_type] = await office.get_workflow_handle(started.workflow_id).result()
        assert ExpertMonthRecorded.model_validate(results["ExpertMonthReport"]).month == last
        assert await _reports(seeded_database, last)
        drawn = AuditSampleDrawn.model_validate(results["AuditSampleWorkflow"])
        assert drawn.period == last and drawn.created
    finally:
        for schedule_id in ids:
            await office.get_schedule_handle(schedule_id).delete()

"""The reconciler and ordered status writes, against a dev server, real Postgres and the workers.

Rows and workflows must agree whatever happens to a workflow: a terminated one gets its row
closed (with a reason, an audit event and the CLOSED SMS) and the one-open guard released; a
recorded application whose workflow never started gets it; a late status write never
overwrites a newer one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.review import ReviewActivities
from chronic.closing import RECONCILER
from chronic.db import Database
from chronic.reconciler import Reconciler
from chronic.settings import Settings
from chronic.submission import StartDeferred, submit
from models.domain import ApplicationStatus, ReviewStage
from models.messages import ApplicationInput, StatusChange
from models.notifications import SmsTemplate
from models.tables import Application, AuditEvent, Benefit, InsuredPerson
from tests import support
from tests.fixtures.temporal import running_workers
from workflows.application import ApplicationWorkflow
from workflows.benefit import BenefitWorkflow


@dataclass
class Office:
    env: WorkflowEnvironment
    db: Database
    settings: Settings

    @property
    def client(self) -> Client:
        return self.env.client

    def reconciler(self) -> Reconciler:
        return Reconciler(self.db, self.client, self.settings)

    async def submit(self, id_number: str = support.WANG, disease: str = "DM") -> str:
        return await submit(
            support.form(id_number, disease),
            client=self.client,
            db=self.db,
            settings=self.settings,
        )

    async def row(self, application_id: str) -> Application:
        async with self.db.session() as session:
            row = await session.get(Application, application_id)
        assert row is not None
        return row


@pytest.fixture
async def office(
    dev_server: WorkflowEnvironment, seeded_database: Database, tmp_path: Path
) -> AsyncIterator[Office]:
    settings = Settings(state_dir=tmp_path)
    # No reconciler loop beside the workers: the passes a test counts are its own.
    async with running_workers(dev_server.client, seeded_database, settings, with_companions=False):
        office = Office(dev_server, seeded_database, settings)
        since = datetime.now(UTC) - timedelta(seconds=5)
        yield office
        # Leave nothing of this test running on the session's server (SMS deliveries too).
        await support.terminate_started_since(dev_server.client, since)


async def until_status(office: Office, application_id: str, status: ApplicationStatus) -> None:
    deadline = asyncio.get_running_loop().time() + 20
    while (await office.row(application_id)).status != status:
        assert asyncio.get_running_loop().time() < deadline, f"{application_id} not {status}"
        await asyncio.sleep(0.1)


async def test_a_terminated_workflow_gets_its_row_closed_and_the_guard_released(
    office: Office,
) -> None:
    app_id = await office.submit()
    await until_status(office, app_id, ApplicationStatus.IN_REVIEW)
    await office.client.get_workflow_handle(app_id).terminate(reason="wrong disease code entered")

    report = await office.reconciler().run_once()
    assert report.closed == [app_id]
    row = await office.row(app_id)
    assert row.status == ApplicationStatus.CLOSED and row.closed_at is not None
    assert row.outcome_reason == (
        "the process was terminated by an operator: wrong disease code entered"
    )
    assert row.status_seq == 1_000_000
    async with office.db.session() as session:
        event = await session.scalar(
            sa.select(AuditEvent).where(
                col(AuditEvent.application_id) == app_id,
                col(AuditEvent.action) == "status_closed",
            )
        )
    assert event is not None and event.actor == RECONCILER

    sms = await support.closed_sms(office.db, app_id)
    assert sms.template == SmsTemplate.CLOSED and sms.application_id == app_id
    assert 0 < len(sms.params["reason"]) <= 60

    # The guard is released: the same person and disease can apply again.
    again = await office.submit()
    assert again != app_id

    # A second pass finds nothing to do.
    assert not await office.reconciler().run_once()


async def test_a_pass_describes_only_rows_whose_workflow_is_not_running(office: Office) -> None:
    app_id = await office.submit()
    await until_status(office, app_id, ApplicationStatus.IN_REVIEW)
    query = f"WorkflowId = '{app_id}' AND ExecutionStatus = 'Running'"
    deadline = asyncio.get_running_loop().time() + 10
    while not [e async for e in office.client.list_workflows(query)]:
        assert asyncio.get_running_loop().time() < deadline, "never listed as running"
        await asyncio.sleep(0.1)

    report = await office.reconciler().run_once()
    assert report.described == [] and not report

    await office.client.get_workflow_handle(app_id).terminate(reason="test")
    deadline = asyncio.get_running_loop().time() + 10
    while [e async for e in office.client.list_workflows(query)]:
        assert asyncio.get_running_loop().time() < deadline, "still listed as running"
        await asyncio.sleep(0.1)
    report = await office.reconciler().run_once()
    assert report.described == [app_id] and report.closed == [app_id]


async def test_two_reconcilers_at_once_close_once_and_send_one_sms(office: Office) -> None:
    app_id = await office.submit(support.LI, "CHD")
    await until_status(office, app_id, ApplicationStatus.IN_REVIEW)
    await office.client.get_workflow_handle(app_id).terminate(reason="duplicate of a paper file")

    reports = await asyncio.gather(*(office.reconciler().run_once() for _ in range(4)))
    assert sum(len(r.closed) for r in reports) == 1
    assert all(not r.errors for r in reports)
    async with office.db.session() as session:
        closes = await session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(col(AuditEvent.application_id) == app_id)
            .where(col(AuditEvent.action) == "status_closed")
        )
    assert closes == 1
    sms_runs = [
        e.id async for e in office.client.list_workflows(f"WorkflowId = 'sms:{app_id}:closed'")
    ]
    assert len(sms_runs) <= 1  # visibility may lag; the start itself is keyed by the ID
    await support.closed_sms(office.db, app_id)


async def test_a_recorded_application_without_a_workflow_gets_one(
    dev_server: WorkflowEnvironment, seeded_database: Database, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path)
    # Recorded while Temporal did not answer: the row is committed, nothing started.
    with pytest.raises(StartDeferred) as deferred:
        await submit(
            support.form(support.ZHANG, "DM"), client=None, db=seeded_database, settings=settings
        )
    app_id = deferred.value.application_id
    office = Office(dev_server, seeded_database, settings)
    assert (await office.row(app_id)).status == ApplicationStatus.SUBMITTED

    # Too young: a submission may still be starting it.
    assert not await office.reconciler().run_once()
    with pytest.raises(RPCError):
        await dev_server.client.get_workflow_handle(app_id).describe()

    async with office.db.session() as session:
        await session.exec(
            sa.update(Application)
            .where(col(Application.id) == app_id)
            .values(submitted_at=datetime.now(UTC) - timedelta(minutes=2))
        )
    # The review worker reconciles at start: the workflow starts and runs intake.
    async with running_workers(dev_server.client, seeded_database, settings):
        try:
            await until_status(office, app_id, ApplicationStatus.IN_REVIEW)
            handle = dev_server.client.get_workflow_handle_for(ApplicationWorkflow.run, app_id)
            progress = await support.eventually(handle, lambda p: p.current_offer is not None)
            assert progress.disease_code == "DM"
            # Started once: a second pass (or a second reconciler) does not start it again.
            assert not (await office.reconciler().run_once()).started
        finally:
            await dev_server.client.get_workflow_handle(app_id).terminate(reason="test cleanup")


async def test_a_late_status_write_never_overwrites_a_newer_one(
    seeded_database: Database, office: Office
) -> None:
    app_id = await office.submit(support.ZHANG, "CHD")
    await until_status(office, app_id, ApplicationStatus.IN_REVIEW)
    await office.client.get_workflow_handle(app_id).terminate(reason="test: writes by hand")
    row = await office.row(app_id)
    review = ReviewActivities(seeded_database)
    now = datetime.now(UTC)

    def change(seq: int, status: ApplicationStatus, step: str) -> StatusChange:
        return StatusChange(
            application_id=app_id,
            status=status,
            stage=ReviewStage.INITIAL_REVIEW,
            at=now,
            step=step,
            seq=seq,
        )

    newer = change(row.status_seq + 2, ApplicationStatus.MATERIALS_REQUESTED, "late-test:2")
    late = change(row.status_seq + 1, ApplicationStatus.RETURNED, "late-test:1")
    assert await ActivityEnvironment().run(review.change_status, newer)
    assert not await ActivityEnvironment().run(review.change_status, late)
    # A retry of the newest write itself is not applied twice either.
    assert not await ActivityEnvironment().run(review.change_status, newer)
    after = await office.row(app_id)
    assert after.status == ApplicationStatus.MATERIALS_REQUESTED
    assert after.status_seq == row.status_seq + 2
    assert "status_returned" not in await support.audit_actions(seeded_database, app_id)


async def test_the_workflow_numbers_its_status_writes(office: Office) -> None:
    app_id = await office.submit(support.LI, "DM")
    await until_status(office, app_id, ApplicationStatus.IN_REVIEW)
    # intake (1) then stage:initial_review (2)
    assert (await office.row(app_id)).status_seq == 2
    history = await office.client.get_workflow_handle(app_id).fetch_history()
    assert history.events[0].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    description = await office.client.get_workflow_handle(app_id).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING


async def test_a_deferred_start_keeps_the_edition_of_the_rules_it_was_submitted_under(
    dev_server: WorkflowEnvironment, seeded_database: Database, tmp_path: Path
) -> None:
    """The office publishes a new edition between a deferred submission and its start: the
    workflow still gets the edition the application was recorded with."""
    with pytest.raises(StartDeferred) as deferred:
        await submit(
            support.form(support.LI, "DM"),
            client=None,
            db=seeded_database,
            settings=Settings(state_dir=tmp_path),
        )
    app_id = deferred.value.application_id
    async with seeded_database.session() as session:
        await session.exec(
            sa.update(Application)
            .where(col(Application.id) == app_id)
            .values(submitted_at=datetime.now(UTC) - timedelta(minutes=2))
        )
    shipped = (Path(__file__).parents[1] / "models/policies/sanmenxia.toml").read_text("utf-8")
    assert 'accept_window = "PT24H"' in shipped
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies/sanmenxia.toml").write_text(
        shipped.replace('accept_window = "PT24H"', 'accept_window = "PT2H"').replace(
            'version = "1"', 'version = "2"'
        ),
        "utf-8",
    )
    edited = Settings(state_dir=tmp_path, policy_dir=tmp_path / "policies")
    assert edited.policy("sanmenxia").accept_window == timedelta(hours=2)

    office = Office(dev_server, seeded_database, edited)
    try:
        assert app_id in (await office.reconciler().run_once()).started
        history = await dev_server.client.get_workflow_handle(app_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        (request,) = await dev_server.client.data_converter.decode(
            started.input.payloads, [ApplicationInput]
        )
        assert isinstance(request, ApplicationInput)
        assert request.policy.accept_window == timedelta(hours=24)
        assert request.policy.version == "1"
    finally:
        await dev_server.client.get_workflow_handle(app_id).terminate(reason="test cleanup")


async def test_an_approval_without_a_benefit_workflow_gets_one_once(office: Office) -> None:
    # An approval made before approvals started the benefit's workflow: a closed, approved
    # application and its certificate row, and no benefit workflow.
    async with office.db.session() as session:
        person = await session.scalar(
            sa.select(InsuredPerson).where(col(InsuredPerson.id_number) == support.LI)
        )
        assert person is not None and person.id is not None
    app_id = await support.add_application(
        office.db,
        mobile="+8613803981234",
        person_id=person.id,
        status=ApplicationStatus.APPROVED,
        stage=ReviewStage.DONE,
    )
    today = datetime.now(UTC).date()
    async with office.db.session() as session:
        row = await session.get(Application, app_id)
        assert row is not None
        row.closed_at = datetime.now(UTC) - timedelta(minutes=5)
        session.add(row)
        session.add(
            Benefit(
                application_id=app_id,
                person_id=person.id,
                disease_code="HT",
                designated_hospital_code="H01",
                valid_from=today,
                valid_to=today + timedelta(days=730),
            )
        )

    report = await office.reconciler().run_once()

    target = f"benefit-{app_id}"
    assert report.started == [target] and not report.errors
    handle = office.client.get_workflow_handle_for(BenefitWorkflow.run, target)
    view = await handle.query(BenefitWorkflow.view)
    assert (view.region, view.designated_hospital_code) == ("sanmenxia", "H01")
    assert view.changes_per_year == 2  # the region's rules
    # Found by its own search attributes, like a benefit its approval started.
    query = f"BenefitStatus = 'active' AND WorkflowId = '{target}'"
    deadline = asyncio.get_running_loop().time() + 10
    while not [e async for e in office.client.list_workflows(query)]:
        assert asyncio.get_running_loop().time() < deadline, "never listed"
        await asyncio.sleep(0.1)
    # Running now: the next pass leaves it alone.
    assert target not in (await office.reconciler().run_once()).started

"""The operators' commands against a dev server, real Postgres and the product's workers.

The CLI runs as in tests/test_cli.py (each command its own event loop, in a thread, configured
through the environment). A workflow whose task keeps failing is made for real: a small test
workflow, run by a worker of this module on its own task queue, raises a plain RuntimeError
(which fails the workflow task, not the workflow) until the "fix" is deployed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col
from temporalio import workflow
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from typer.testing import CliRunner, Result

from chronic.cli import app
from chronic.db import Database
from chronic.settings import Settings
from chronic.submission import StartDeferred, submit
from models import search_attributes
from models.domain import ApplicationStatus, ExpertStatus
from models.notifications import SmsTemplate
from models.tables import Application, AuditEvent, Expert, OfficeNotice
from tests import support
from tests.fixtures import free_port
from tests.fixtures.temporal import running_workers
from workflows.application import ApplicationWorkflow

BROKEN_QUEUE = "admin-test-broken"
OPERATOR = "alice"


class Deployment:
    """Whether the "bug" of the test workflows is fixed (what a deployment would change)."""

    fixed = False


@workflow.defn(name="ApplicationWorkflow")
class BrokenApplication:
    """A broken build of the application workflow (only this module's worker runs it, on its
    own task queue): fails its very first workflow task, so there is no completed task to go
    back to."""

    @workflow.run
    async def run(self) -> str:
        raise RuntimeError("schema mismatch: column application.stage_v2 does not exist")


@workflow.defn(name="FlakyApplication")
class FlakyApplication:
    """Completes a first task (a timer), then fails every task until the fix is deployed."""

    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(milliseconds=100))
        if not Deployment.fixed:
            raise RuntimeError("KeyError: 'pool_size' in the offer view")
        return "done"


@dataclass
class Desk:
    env: WorkflowEnvironment
    db: Database
    runner: CliRunner

    @property
    def client(self) -> Client:
        return self.env.client

    async def cli(self, *args: str) -> Result:
        result = await asyncio.to_thread(self.runner.invoke, app, list(args))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    async def row(self, application_id: str) -> Application:
        async with self.db.session() as session:
            row = await session.get(Application, application_id)
        assert row is not None
        return row

    async def audit(self, application_id: str | None, action: str) -> list[AuditEvent]:
        async with self.db.session() as session:
            return list(
                await session.scalars(
                    sa.select(AuditEvent).where(
                        col(AuditEvent.application_id) == application_id,
                        col(AuditEvent.action) == action,
                    )
                )
            )

    async def recorded(self, id_number: str, disease: str = "DM") -> str:
        """An application row as submission writes it, with no workflow started."""
        with pytest.raises(StartDeferred) as deferred:
            await submit(
                support.form(id_number, disease), client=None, db=self.db, settings=Settings()
            )
        return deferred.value.application_id

    async def broken(self, id_number: str, workflow_type: str = "ApplicationWorkflow") -> str:
        """A recorded application whose workflow's task keeps failing."""
        app_id = await self.recorded(id_number)
        await self.client.start_workflow(workflow_type, id=app_id, task_queue=BROKEN_QUEUE)
        await until(lambda: _task_failed(self.client, app_id), "the workflow task fails")
        return app_id


async def _task_failed(client: Client, workflow_id: str) -> bool:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in history.events)


async def until(check: Callable[[], Any], what: str, within: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting: {what}"
        await asyncio.sleep(0.2)


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
        CHRONIC_OPERATOR=OPERATOR,
    )
    Deployment.fixed = False
    since = datetime.now(UTC) - timedelta(seconds=5)
    broken_worker = Worker(
        dev_server.client,
        task_queue=BROKEN_QUEUE,
        workflows=[BrokenApplication, FlakyApplication],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with (
        running_workers(dev_server.client, seeded_database, Settings(state_dir=tmp_path)),
        broken_worker,
    ):
        yield Desk(dev_server, seeded_database, CliRunner())
    await support.terminate_started_since(dev_server.client, since)


# ---- close --------------------------------------------------------------------------------------


async def test_admin_close_on_a_running_application_closes_it_through_its_workflow(
    desk: Desk,
) -> None:
    handle = await support.start(desk.client, desk.db, Settings())
    await support.pending_offer(handle)

    closed = await desk.cli("admin", "close", handle.id, "--reason", "申请人撤回申请")
    assert closed.exit_code == 0, closed.output
    assert f"closed {handle.id} by its process (closed)" in closed.stdout
    result = await handle.result()
    assert result.status == ApplicationStatus.CLOSED
    row = await desk.row(handle.id)
    assert row.status == ApplicationStatus.CLOSED and row.closed_at is not None
    assert "申请人撤回申请" in (row.outcome_reason or "")
    [event] = await desk.audit(handle.id, "admin_close")
    assert event.actor == f"operator:{OPERATOR}" and event.detail["via"] == "update"
    assert event.detail["reason"] == "申请人撤回申请"
    sms = await support.outbox(desk.db, handle.id)
    assert [s.template for s in sms][-1] == SmsTemplate.CLOSED

    # A second close is refused plainly: the row is closed already.
    again = await desk.cli("admin", "close", handle.id, "--reason", "again")
    assert again.exit_code == 1
    assert "nothing to do" in again.stderr


async def test_admin_close_terminates_a_workflow_whose_task_keeps_failing(desk: Desk) -> None:
    app_id = await desk.broken(support.LI)

    # What the operator sees first: the row, the failure, the next step.
    shown = await desk.cli("status", app_id)
    assert shown.exit_code == 0, shown.output
    assert "status     submitted (stage intake) — from the database" in shown.stdout
    assert "workflow task failing since" in shown.stdout
    assert "schema mismatch: column application.stage_v2 does not exist" in shown.stdout
    assert f"chronic admin retry {app_id}" in shown.stdout
    assert "Traceback" not in shown.stdout

    async def listed_as_stuck() -> bool:
        stuck = await desk.cli("admin", "stuck")
        assert stuck.exit_code == 0, stuck.output
        return f"{app_id}  workflow task failing since" in stuck.stdout and (
            f"fix and deploy, then `chronic admin retry {app_id}`" in stuck.stdout
        )

    await until(listed_as_stuck, "admin stuck lists it")

    closed = await desk.cli("admin", "close", app_id, "--reason", "流程故障，请重新提交")
    assert closed.exit_code == 0, closed.output
    assert f"terminated and closed {app_id}" in closed.stdout
    description = await desk.client.get_workflow_handle(app_id).describe()
    assert description.status == WorkflowExecutionStatus.TERMINATED
    row = await desk.row(app_id)
    assert row.status == ApplicationStatus.CLOSED and row.closed_at is not None
    assert row.outcome_reason == (
        f"closed by operator:{OPERATOR}: 流程故障，请重新提交 (the process did not answer and "
        "was terminated)"
    )
    sms = await support.closed_sms(desk.db, app_id)
    assert sms.template == SmsTemplate.CLOSED and sms.params["reason"] == "流程故障，请重新提交"
    [event] = await desk.audit(app_id, "admin_close")
    assert event.actor == f"operator:{OPERATOR}" and event.detail["via"] == "terminate"
    [status_event] = await desk.audit(app_id, "status_closed")
    assert status_event.actor == f"operator:{OPERATOR}"

    # The guard is released: the same person and disease can apply again.
    assert await desk.recorded(support.LI)


async def test_a_reason_with_an_id_number_is_refused(desk: Desk) -> None:
    refused = await desk.cli("admin", "close", "APP-X", "--reason", f"ID {support.WANG}")
    assert refused.exit_code == 1
    assert "resident ID number" in refused.stderr


# ---- retry ------------------------------------------------------------------------------------


async def test_admin_retry_resets_a_running_workflow_to_its_last_completed_task(
    desk: Desk,
) -> None:
    app_id = await desk.broken(support.ZHANG, "FlakyApplication")
    handle = desk.client.get_workflow_handle(app_id)
    first_run = (await handle.describe()).run_id

    retried = await desk.cli("admin", "retry", app_id, "--reason", "fix 1.4.2 deployed")
    assert retried.exit_code == 0, retried.output
    assert f"reset {app_id} to event" in retried.stdout and "new run" in retried.stdout
    description = await handle.describe()
    assert description.run_id != first_run and description.run_id in retried.stdout
    history = await handle.fetch_history()
    reset = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        and e.workflow_task_failed_event_attributes.cause
        == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
    ]
    assert len(reset) == 1
    assert f"operator:{OPERATOR}" in reset[0].workflow_task_failed_event_attributes.failure.message

    Deployment.fixed = True  # the fix reaches the workers: the new run goes on and finishes
    assert await handle.result() == "done"
    [event] = await desk.audit(app_id, "admin_retry")
    assert event.actor == f"operator:{OPERATOR}" and event.detail["reason"] == "fix 1.4.2 deployed"

    finished = await desk.cli("admin", "retry", app_id)
    assert finished.exit_code == 1
    assert f"application {app_id} is finished (completed): there is nothing to retry" in (
        finished.stderr
    )


async def test_admin_retry_refuses_without_a_completed_task(desk: Desk) -> None:
    app_id = await desk.broken(support.WANG)
    refused = await desk.cli("admin", "retry", app_id)
    assert refused.exit_code == 1
    assert "no completed workflow task to go back to" in refused.stderr


# ---- the expert pool ----------------------------------------------------------------------------


async def test_reinstating_an_expert_signals_a_case_waiting_on_an_exhausted_pool(
    desk: Desk,
) -> None:
    pool = await support.experts_of(desk.db, "endocrine")
    await support.keep_only_active(desk.db, "endocrine", [])
    comeback = pool[0]
    async with desk.db.session() as session:
        await session.exec(
            sa.update(Expert)
            .where(col(Expert.code) == comeback)
            .values(status=ExpertStatus.DISQUALIFIED, consecutive_strikes=3)
        )
    app_id = await submit(support.form(), client=desk.client, db=desk.db, settings=Settings())
    handle = desk.client.get_workflow_handle_for(ApplicationWorkflow.run, app_id)
    await support.eventually(handle, lambda p: p.pool_exhausted_since is not None)
    exhausted = f"{search_attributes.POOL_EXHAUSTED.name} = true AND WorkflowId = '{app_id}'"

    async def listed() -> bool:
        return bool([e async for e in desk.client.list_workflows(exhausted)])

    await until(listed, "PoolExhausted visible")

    reinstated = await desk.cli("expert", "reinstate", comeback, "--reason", "申诉成立")
    assert reinstated.exit_code == 0, reinstated.output
    assert f"reinstated {comeback} (was disqualified; strikes reset)" in reinstated.stdout
    assert "1 application(s) waiting for an expert draw again now" in reinstated.stdout
    row = await support.expert(desk.db, comeback)
    assert row.status == ExpertStatus.ACTIVE and row.consecutive_strikes == 0
    # Drawn at once (the safety-net timer is an hour away).
    offer = await support.pending_offer(handle)
    assert offer.expert == comeback
    [event] = await desk.audit(None, "expert_reinstated")
    assert event.actor == f"operator:{OPERATOR}" and event.detail["expert"] == comeback

    again = await desk.cli("expert", "reinstate", comeback, "--reason", "x")
    assert again.exit_code == 1 and "active already" in again.stderr


async def test_enroll_validates_against_the_register_and_the_catalogue(desk: Desk) -> None:
    base = ["expert", "enroll", "E900", "--name", "周医生", "--title", "senior"]
    no_hospital = await desk.cli(*base, "--hospital", "H99", "--categories", "endocrine")
    assert no_hospital.exit_code == 1
    assert "--hospital H99: no hospital with this code" in no_hospital.stderr
    bad_category = await desk.cli(*base, "--hospital", "H01", "--categories", "endocrine,magic")
    assert bad_category.exit_code == 1
    assert "--categories magic: not a category of the sanmenxia catalogue" in bad_category.stderr
    bad_title = await desk.cli(*base[:-2], "--title", "intern", "--hospital", "H01",
                               "--categories", "endocrine")  # fmt: skip
    assert bad_title.exit_code == 1 and "--title 'intern'" in bad_title.stderr

    enrolled = await desk.cli(*base, "--hospital", "H01", "--categories", "endocrine")
    assert enrolled.exit_code == 0, enrolled.output
    assert "enrolled E900 at H01" in enrolled.stdout
    row = await support.expert(desk.db, "E900")
    assert row.status == ExpertStatus.ACTIVE and row.categories == ["endocrine"]
    [event] = await desk.audit(None, "expert_enrolled")
    assert event.actor == f"operator:{OPERATOR}"
    twice = await desk.cli(*base, "--hospital", "H01", "--categories", "endocrine")
    assert twice.exit_code == 1 and "exists already" in twice.stderr


# ---- notices, submission without Temporal --------------------------------------------------------


async def test_notices_lists_open_ones_and_all_with_the_flag(desk: Desk) -> None:
    now = datetime.now(UTC)
    async with desk.db.session() as session:
        session.add(
            OfficeNotice(
                step_key="t:1", application_id="APP-20261130-AAAAAA", kind="pool_exhausted",
                message="no endocrine expert left", at=now,
            )
        )  # fmt: skip
        session.add(
            OfficeNotice(
                step_key="t:2", application_id=None, kind="stuck", message="old one",
                at=now - timedelta(days=1), resolved_at=now,
            )
        )  # fmt: skip
    open_only = await desk.cli("admin", "notices")
    assert open_only.exit_code == 0, open_only.output
    assert "pool_exhausted APP-20261130-AAAAAA (open): no endocrine expert left" in open_only.stdout
    assert "old one" not in open_only.stdout
    every = await desk.cli("admin", "notices", "--all")
    assert "old one" in every.stdout and "resolved" in every.stdout


async def test_submit_without_temporal_records_the_application_and_says_so(
    seeded_database: Database, configured: Callable[..., None], tmp_path: Path
) -> None:
    configured(
        temporal=f"127.0.0.1:{free_port()}",
        database_url=seeded_database.url,
        CHRONIC_OPERATOR=OPERATOR,
    )
    path = tmp_path / "form.json"
    path.write_text(support.form(support.ZHANG, "CHD").model_dump_json(), encoding="utf-8")
    result = await asyncio.to_thread(CliRunner().invoke, app, ["submit", str(path)])
    assert result.exit_code == 0, result.output
    app_id = result.stdout.strip().splitlines()[-1]
    assert "process not started yet" in result.stdout
    assert "will start as soon as Temporal answers" in result.stdout
    async with seeded_database.session() as session:
        row = await session.get(Application, app_id)
    assert row is not None and row.status == ApplicationStatus.SUBMITTED

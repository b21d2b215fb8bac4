"""SMS delivery beside the process: SmsDelivery retried until sent, never a gate, never dropped.

The workflows run on the time-skipping server (retry backoff of hours passes in moments) with
the product's orchestration worker and a notification worker on a real Postgres; the Aliyun
gateway talks to the local Dysmsapi stand-in. The operator's `chronic sms list` / `resend` run
against the dev server like the other CLI tests.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col, select
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from typer.testing import CliRunner, Result

from activities.notification import NO_RECIPIENT, NotificationActivities
from chronic.cli import app
from chronic.db import Database
from chronic.settings import Settings
from chronic.sms import LogGateway, SmsGateway, build_gateway
from chronic.sms.delivery import request_from_outbox, start_delivery
from models.domain import (
    SmsStatus,
)
from models.notifications import SmsRequest, SmsResult, SmsTemplate
from models.tables import Application, AuditEvent, SmsOutbox
from tests import support
from tests.fakes.aliyun_sms import AliyunSmsFake, aliyun_sms_fake
from tests.fixtures.temporal import running_workers
from workers import orchestration, queues
from workers.resources import Resources
from workflows.sms import SEND_FAILED, SEND_RETRY, Deliveries, SmsDelivery, workflow_id

__all__ = ["aliyun_sms_fake"]  # the fixture is used by name below

GOOD_MOBILE = "+8613812341234"
GOOD_DIGITS = "13812341234"
BAD_MOBILE = "1381234"  # seven digits: not a phone number anywhere
APPROVED_PARAMS = {
    "valid_from": "2026-05-06",
    "valid_to": "2028-05-05",
    "hospital": "三门峡市中心医院",
}
PARENT_QUEUE = "sms-test-parent"


# ---- a tiny parent that hands its SMS off and finishes ------------------------------------------


@workflow.defn(sandboxed=False)
class HandsOffSms:
    """Hands an SMS off twice (as a replayed or reset run would), goes on, and waits for its
    deliveries only at the end, as the application and filing workflows do."""

    def __init__(self) -> None:
        self._went_on = False

    @workflow.run
    async def run(self, request: SmsRequest) -> str:
        deliveries = Deliveries()
        await deliveries.send(request)
        await deliveries.send(request)
        self._went_on = True
        await deliveries.done()
        return "done"

    @workflow.query
    def went_on(self) -> bool:
        return self._went_on


# ---- data ---------------------------------------------------------------------------------------


async def set_mobile(db: Database, application_id: str, mobile: str) -> None:
    async with db.session() as session:
        await session.exec(
            sa.update(Application)
            .where(col(Application.id) == application_id)
            .values(mobile=mobile)
        )


def approved(application_id: str) -> SmsRequest:
    return SmsRequest(
        dedup_key=f"{application_id}:approved",
        template=SmsTemplate.APPROVED,
        application_id=application_id,
        params=APPROVED_PARAMS,
    )


async def rows_of(db: Database, application_id: str) -> list[SmsOutbox]:
    async with db.session() as session:
        query = (
            select(SmsOutbox)
            .where(SmsOutbox.application_id == application_id)
            .order_by(col(SmsOutbox.id))
        )
        return list((await session.exec(query)).all())


# ---- workers ------------------------------------------------------------------------------------


class CountingGateway:
    """The log gateway, recording every number it was asked to send to."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0
        self.sent: list[str] = []
        self._log = LogGateway()

    async def send(self, phone_e164: str, template: SmsTemplate, params: Mapping[str, str]) -> str:
        self.calls += 1
        self.sent.append(phone_e164)
        return await self._log.send(phone_e164, template, params)


@asynccontextmanager
async def sms_workers(
    client: Client, db: Database, gateway: SmsGateway | None
) -> AsyncIterator[None]:
    """The product's orchestration worker, the test parent's worker, and — unless ``gateway``
    is None — a notification worker sending through ``gateway``."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            orchestration.build(
                client, Resources(Settings(), db), graceful_shutdown=timedelta(seconds=1)
            )
        )
        await stack.enter_async_context(
            Worker(
                client,
                task_queue=PARENT_QUEUE,
                workflows=[HandsOffSms],
                workflow_runner=UnsandboxedWorkflowRunner(),
            )
        )
        if gateway is not None:
            await stack.enter_async_context(notification_worker(client, db, gateway))
        yield


def notification_worker(client: Client, db: Database, gateway: SmsGateway) -> Worker:
    return Worker(
        client,
        task_queue=queues.NOTIFICATION,
        activities=[NotificationActivities(db, gateway).send_sms],
        graceful_shutdown_timeout=timedelta(seconds=1),
    )


async def deliver(
    client: Client, request: SmsRequest, skipping: WorkflowEnvironment | None = None
) -> SmsResult:
    """Start the delivery like an operator's command does and wait for its outcome.

    On the time-skipping server (``skipping``) server time is let run in steps of the
    maximum backoff: only the handle of a workflow the test client started itself skips time
    on its own.
    """
    await start_delivery(client, request)
    handle = client.get_workflow_handle_for(SmsDelivery.run, workflow_id(request.dedup_key))
    if skipping is not None:
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await skipping.sleep(SEND_RETRY.maximum_interval or timedelta(minutes=10))
    return await handle.result()


# ---- SmsDelivery --------------------------------------------------------------------------------


async def test_sms_delivery_sends_once(
    time_skipping: WorkflowEnvironment, seeded_database: Database
) -> None:
    client, db = time_skipping.client, seeded_database
    application_id = await support.add_application(db, mobile=GOOD_MOBILE)
    gateway = CountingGateway()

    async with sms_workers(client, db, gateway):
        result = await deliver(client, approved(application_id), time_skipping)

    assert (result.status, result.duplicate) == (SmsStatus.SENT, False)
    assert gateway.sent == [GOOD_MOBILE]
    [row] = await rows_of(db, application_id)
    assert (row.id, row.status, row.attempts) == (result.outbox_id, SmsStatus.SENT, 1)
    description = await client.get_workflow_handle(workflow_id(row.dedup_key)).describe()
    assert description.workflow_type == "SmsDelivery"
    assert description.task_queue == queues.APPLICATIONS


async def test_a_provider_outage_is_retried_past_twenty_attempts_with_the_backoff_capped(
    time_skipping: WorkflowEnvironment, seeded_database: Database, aliyun_sms_fake: AliyunSmsFake
) -> None:
    client, db = time_skipping.client, seeded_database
    application_id = await support.add_application(db, mobile=GOOD_MOBILE)
    outage = 24  # the old retry policy gave up after 20 attempts
    aliyun_sms_fake.fail_next(outage, "ServiceUnavailable", "down for maintenance", status=503)
    request = approved(application_id)

    async with sms_workers(client, db, build_gateway(aliyun_sms_fake.settings())):
        result = await deliver(client, request, time_skipping)

    assert result.status == SmsStatus.SENT
    assert len(aliyun_sms_fake.sent) == outage + 1
    assert aliyun_sms_fake.sent[-1].params["PhoneNumbers"] == GOOD_DIGITS
    [row] = await rows_of(db, application_id)
    assert (row.status, row.attempts, row.last_error) == (SmsStatus.SENT, outage + 1, None)
    # Backoff 5 s, 10 s … capped at 10 minutes: 24 waits take 635 s + 17 × 600 s of server
    # time. Uncapped they would take 5 s × (2^24 − 1), about 2.7 years.
    history = await client.get_workflow_handle(workflow_id(request.dedup_key)).fetch_history()
    events = history.events
    started = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    assert started[-1].activity_task_started_event_attributes.attempt == outage + 1
    elapsed = events[-1].event_time.ToDatetime() - events[0].event_time.ToDatetime()
    assert SEND_RETRY.maximum_interval is not None
    capped = timedelta(seconds=5 * (2**7 - 1)) + (outage - 7) * SEND_RETRY.maximum_interval
    assert capped * 0.9 < elapsed < capped * 1.2 + timedelta(minutes=5), elapsed


async def test_an_invalid_number_ends_failed_with_a_failed_outbox_row_and_its_reason(
    time_skipping: WorkflowEnvironment, seeded_database: Database
) -> None:
    client, db = time_skipping.client, seeded_database
    application_id = await support.add_application(db, mobile=BAD_MOBILE)
    gateway = CountingGateway()
    request = approved(application_id)

    async with sms_workers(client, db, gateway):
        with pytest.raises(WorkflowFailureError) as failed:
            await deliver(client, request, time_skipping)
        description = await client.get_workflow_handle(workflow_id(request.dedup_key)).describe()

    assert description.status == WorkflowExecutionStatus.FAILED
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == SEND_FAILED and "not a valid phone number" in cause.message
    assert BAD_MOBILE not in cause.message
    assert gateway.calls == 0
    [row] = await rows_of(db, application_id)
    assert (row.status, row.recipient, row.attempts) == (SmsStatus.FAILED, NO_RECIPIENT, 1)
    assert row.last_error is not None and "not a valid phone number" in row.last_error


async def test_a_provider_refusing_the_number_ends_failed_after_one_attempt(
    time_skipping: WorkflowEnvironment, seeded_database: Database, aliyun_sms_fake: AliyunSmsFake
) -> None:
    client, db = time_skipping.client, seeded_database
    application_id = await support.add_application(db, mobile=GOOD_MOBILE)
    aliyun_sms_fake.fail_next(1, "isv.MOBILE_NUMBER_ILLEGAL", f"非法手机号 {GOOD_DIGITS}")

    async with sms_workers(client, db, build_gateway(aliyun_sms_fake.settings())):
        with pytest.raises(WorkflowFailureError) as failed:
            await deliver(client, approved(application_id), time_skipping)

    assert isinstance(failed.value.cause, ApplicationError)
    assert "isv.MOBILE_NUMBER_ILLEGAL" in failed.value.cause.message
    assert GOOD_DIGITS not in failed.value.cause.message
    [row] = await rows_of(db, application_id)
    assert (row.status, row.attempts) == (SmsStatus.FAILED, 1)
    assert row.last_error is not None and GOOD_DIGITS not in row.last_error


async def test_the_same_dedup_key_started_twice_sends_once(
    time_skipping: WorkflowEnvironment, seeded_database: Database
) -> None:
    client, db = time_skipping.client, seeded_database
    application_id = await support.add_application(db, mobile=GOOD_MOBILE)
    gateway = CountingGateway()
    request = approved(application_id)

    async with sms_workers(client, db, gateway):
        # Twice at once (the second finds the first running), then again once it completed.
        first, second = await asyncio.gather(
            start_delivery(client, request), start_delivery(client, request)
        )
        result = await deliver(client, request, time_skipping)
        again = await start_delivery(client, request)
        parent = await client.execute_workflow(
            HandsOffSms.run, request, id=f"parent-{uuid.uuid4()}", task_queue=PARENT_QUEUE
        )

    assert sorted([first, second]) == [False, True]
    assert again is False  # a completed delivery is not run again
    assert parent == "done"  # a workflow's delivery finds it sent too
    assert result.status == SmsStatus.SENT
    assert gateway.sent == [GOOD_MOBILE]
    assert len(await rows_of(db, application_id)) == 1


async def test_a_delivery_is_never_a_gate_and_the_run_ends_once_the_person_is_told(
    time_skipping: WorkflowEnvironment, seeded_database: Database
) -> None:
    client, db = time_skipping.client, seeded_database
    application_id = await support.add_application(db, mobile=GOOD_MOBILE)
    request = approved(application_id)
    gateway = CountingGateway()

    # No notification worker: the run hands the SMS off and goes on all the same.
    async with sms_workers(client, db, None):
        parent = await client.start_workflow(
            HandsOffSms.run, request, id=f"parent-{uuid.uuid4()}", task_queue=PARENT_QUEUE
        )
        for _ in range(100):
            if await parent.query(HandsOffSms.went_on):
                break
            await asyncio.sleep(0.1)
        assert await parent.query(HandsOffSms.went_on)
        # It has not ended: it ends when the person has been told.
        assert (await parent.describe()).status == WorkflowExecutionStatus.RUNNING
        assert await rows_of(db, application_id) == []

        # The notification worker comes back: the SMS goes out once, and the run ends.
        async with notification_worker(client, db, gateway):
            assert await asyncio.wait_for(parent.result(), timeout=30) == "done"

    assert gateway.sent == [GOOD_MOBILE]
    [row] = await rows_of(db, application_id)
    assert row.status == SmsStatus.SENT
    events = [e async for e in parent.fetch_history_events()]
    assert not any(
        e.HasField("start_child_workflow_execution_initiated_event_attributes") for e in events
    ), "a delivery is an activity of the run, not a child"


# ---- chronic sms list / resend ------------------------------------------------------------------


async def cli(*args: str) -> Result:
    """Run ``chronic ARGS`` in a thread (each command runs its own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


async def test_sms_list_failed_and_resend_through_the_cli(
    dev_server: WorkflowEnvironment,
    seeded_database: Database,
    configured: Callable[..., None],
    tmp_path: Path,
) -> None:
    configured(
        temporal=dev_server.client.service_client.config.target_host,
        database_url=seeded_database.url,
        CHRONIC_OPERATOR="desk-7",
        CHRONIC_SMS_GATEWAY="log",
    )
    client, db = dev_server.client, seeded_database
    first = await support.add_application(db, mobile=BAD_MOBILE)
    second = await support.add_application(db, mobile=BAD_MOBILE)
    sent = await support.add_application(db, mobile=GOOD_MOBILE)

    async with running_workers(client, db, Settings(state_dir=tmp_path)):
        for application_id in (first, second):
            with pytest.raises(WorkflowFailureError):
                await deliver(client, approved(application_id))
        await deliver(client, approved(sent))
        [first_row] = await rows_of(db, first)
        [second_row] = await rows_of(db, second)

        listed = await cli("sms", "list", "--failed")
        assert listed.exit_code == 0, listed.output
        assert first in listed.stdout and second in listed.stdout
        assert sent not in listed.stdout
        assert "not a valid phone number" in listed.stdout
        assert BAD_MOBILE not in listed.stdout

        # Still invalid: it fails again and says so.
        again = await cli("sms", "resend", str(first_row.id))
        assert again.exit_code == 1, again.output
        assert f"outbox {first_row.id}" in again.stdout
        assert "failed again" in again.stdout and "not a valid phone number" in again.stdout

        # Fixed in the database: the resend sends it, under the same row.
        await set_mobile(db, first, GOOD_MOBILE)
        fixed = await cli("sms", "resend", str(first_row.id))
        assert fixed.exit_code == 0, fixed.output
        assert f"outbox {first_row.id}" in fixed.stdout and "sent" in fixed.stdout

        await set_mobile(db, second, GOOD_MOBILE)
        every = await cli("sms", "resend", "--all-failed")
        assert every.exit_code == 0, every.output
        assert f"outbox {second_row.id}" in every.stdout
        nothing_left = await cli("sms", "resend", "--all-failed")
        assert "no failed SMS to resend" in nothing_left.stdout

        refused = await cli("sms", "resend", str(first_row.id))
        assert refused.exit_code == 1
        assert "is sent, not failed" in refused.stderr

        one = await cli("sms", "list", first)

    assert one.exit_code == 0, one.output
    assert "sent" in one.stdout and "+86138****1234" in one.stdout
    assert GOOD_DIGITS not in one.stdout
    for application_id, attempts in ((first, 3), (second, 2)):
        [row] = await rows_of(db, application_id)
        assert (row.status, row.attempts, row.recipient) == (
            SmsStatus.SENT,
            attempts,
            GOOD_MOBILE,
        )
    async with db.session() as session:
        audit = list(
            (
                await session.exec(
                    select(AuditEvent)
                    .where(AuditEvent.action == "sms_resend")
                    .order_by(col(AuditEvent.id))
                )
            ).all()
        )
    assert [(e.application_id, e.actor) for e in audit] == [
        (first, "operator:desk-7"),
        (first, "operator:desk-7"),
        (second, "operator:desk-7"),
    ]
    assert audit[0].detail["outbox_id"] == first_row.id


def test_a_resend_rebuilds_the_request_each_row_was_written_for() -> None:
    applicant = SmsOutbox(
        id=1,
        dedup_key="APP-1:approved",
        application_id="APP-1",
        template="approved",
        recipient=NO_RECIPIENT,
        params={**APPROVED_PARAMS, "application_id": "APP-1", "text": "…"},
        status=SmsStatus.FAILED,
        gateway="log",
    )
    hospital = SmsOutbox(
        id=2,
        dedup_key="APP-1:disqualified:E042",
        template="expert_disqualified",
        recipient=NO_RECIPIENT,
        params={"expert_code": "E042", "strikes": "3", "hospital_code": "H02", "text": "…"},
        status=SmsStatus.FAILED,
        gateway="log",
    )
    older = hospital.model_copy(update={"params": {"expert_code": "E042", "strikes": "3"}})

    assert request_from_outbox(applicant) == approved("APP-1")
    assert request_from_outbox(hospital) == SmsRequest(
        dedup_key="APP-1:disqualified:E042",
        template=SmsTemplate.EXPERT_DISQUALIFIED,
        hospital_code="H02",
        params={"expert_code": "E042", "strikes": "3"},
    )
    assert request_from_outbox(older, hospital_code="H07").hospital_code == "H07"
    with pytest.raises(ValueError, match="which hospital"):
        request_from_outbox(older)

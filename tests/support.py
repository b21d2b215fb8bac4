"""Helpers for workflow tests: forms of the demo world, starting applications, reading results."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from stdnum.cn import ric
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from chronic.db import Database
from chronic.seed.pharmacies import load_pharmacies
from chronic.settings import Settings
from chronic.submission import submit
from models.application import ApplicationForm
from models.domain import (
    ApplicationStatus,
    ExpertStatus,
    HospitalGrade,
    InsuranceStatus,
    InsuranceType,
    MaterialKind,
    ReviewStage,
    SmsStatus,
)
from models.messages import MaterialItem, OfferView, Progress
from models.notifications import SmsTemplate
from models.policy import FormField, PolicyProfile, load_policy
from models.tables import Application, AuditEvent, Expert, Hospital, InsuredPerson, SmsOutbox
from workflows.application import ApplicationWorkflow

Handle = WorkflowHandle[ApplicationWorkflow, Progress]

# Example applicants of chronic/seed/reference/sanmenxia.toml.
WANG = "411221199001052066"
LI = "411202199204101287"
ZHANG = "411202199501062421"
LIU_SUSPENDED = "410102198406180357"


def material(
    kind: MaterialKind = MaterialKind.DIAGNOSIS_CERTIFICATE,
    hospital: str = "H01",
    issued_on: date | None = None,
) -> dict[str, Any]:
    issued_on = issued_on or date.today() - timedelta(days=30)
    name = f"{kind}-{hospital}-{issued_on}.pdf"
    return {
        "kind": kind.value,
        "hospital": hospital,
        "issued_on": issued_on.isoformat(),
        "file": f"scans/{name}",
        "sha256": hashlib.sha256(name.encode()).hexdigest(),
    }


COMMUNITY_HEALTH_CENTRE = "W90"
"""A Wuhan community health centre (level 1) that region forms choose by default."""


def region_fields(region: str) -> dict[str, Any]:
    """Values for every field the region's form requires (its profile's ``form.required``):
    the pharmacy is the first of the region in chronic/seed/pharmacies.toml."""
    pharmacy = next((p.code for p in load_pharmacies() if p.region == region), None)
    values: dict[FormField, Any] = {
        FormField.ADDRESS: "武汉市江汉区解放大道634号",
        FormField.INSURED_DISTRICT: "江汉区",
        FormField.DIAGNOSIS_SETTING: "outpatient",
        FormField.COMMUNITY_HEALTH_CENTRE: COMMUNITY_HEALTH_CENTRE,
        FormField.DESIGNATED_PHARMACY: pharmacy,
    }
    data: dict[str, Any] = {}
    for field in load_policy(region).form.required:
        *parents, name = field.value.split(".")
        target = data
        for parent in parents:
            target = target.setdefault(parent, {})
        target[name] = values[field]
    return data


def form(
    id_number: str = WANG,
    disease: str = "DM",
    *,
    materials: list[dict[str, Any]] | None = None,
    diagnosing_hospital: str = "H01",
    region: str = "sanmenxia",
    designated_hospital: str = "H05",
    **fields: Any,
) -> ApplicationForm:
    """A valid form of ``region``; what the region's form requires is filled in
    (:func:`region_fields`) unless ``fields`` gives it (``None`` leaves it out)."""
    required = region_fields(region)
    applicant = {
        "name": "测试",
        "id_number": id_number,
        "mobile": "13803981234",
        **required.pop("applicant", {}),
    }
    data = {
        "region": region,
        "applicant": applicant,
        "disease_code": disease,
        "case_number": "BA-0001",
        "diagnosing_hospital": diagnosing_hospital,
        "designated_hospital": designated_hospital,
        "materials": materials or [material(), material(MaterialKind.LAB_RESULT)],
        **required,
        **fields,
    }
    return ApplicationForm.model_validate(
        {key: value for key, value in data.items() if value is not None}
    )


async def register_community_health_centre(db: Database) -> None:
    """Wuhan's community health centre :data:`COMMUNITY_HEALTH_CENTRE` in the hospital
    register, unless it is there already (a seeded Wuhan register has it)."""
    async with db.session() as session:
        if await session.get(Hospital, COMMUNITY_HEALTH_CENTRE) is None:
            session.add(
                Hospital(
                    code=COMMUNITY_HEALTH_CENTRE,
                    name="武汉市江汉区民族街社区卫生服务中心",
                    level=1,
                    grade=HospitalGrade.A,
                    public=True,
                    region="wuhan",
                )
            )


async def insured_person(
    db: Database,
    *,
    place: str,
    born: date,
    sequence: int,
    region: str = "sanmenxia",
    insurance_type: InsuranceType = InsuranceType.EMPLOYEE,
) -> tuple[str, int]:
    """A new person insured normally, with a valid ID number (birth place, date, sequence);
    returns the ID number and the row's id."""
    body = f"{place}{born:%Y%m%d}{sequence % 1000:03d}"
    id_number = body + ric.calc_check_digit(body + "0")  # stdnum wants a placeholder digit
    async with db.session() as session:
        person = InsuredPerson(
            id_number=id_number,
            name="测试",
            mobile="+8613803981234",
            insurance_type=insurance_type,
            insurance_status=InsuranceStatus.NORMAL,
            region=region,
        )
        session.add(person)
        await session.flush()
        assert person.id is not None
        return id_number, person.id


def items(*materials: dict[str, Any]) -> tuple[MaterialItem, ...]:
    return tuple(MaterialItem.model_validate(m) for m in materials)


def short_policy(**windows: timedelta) -> PolicyProfile:
    return load_policy("sanmenxia").with_windows(**windows)


async def start(
    client: Client,
    db: Database,
    settings: Settings,
    application: ApplicationForm | None = None,
    policy: PolicyProfile | None = None,
) -> Handle:
    """Submit like the CLI does, on a server without the product's search attributes."""
    app_id = await submit(
        application or form(),
        client=client,
        db=db,
        settings=settings,
        policy=policy,
        search_attributes=False,
    )
    return client.get_workflow_handle_for(ApplicationWorkflow.run, app_id)


async def eventually(
    handle: Handle,
    condition: Callable[[Progress], bool],
    within_seconds: float = 20,
) -> Progress:
    """Query progress until ``condition`` holds (activities run in real time)."""
    deadline = asyncio.get_running_loop().time() + within_seconds
    while True:
        try:
            progress = await handle.query(ApplicationWorkflow.progress)
        except RPCError:  # a restarted worker: the query waits out the old sticky queue
            if asyncio.get_running_loop().time() > deadline:
                raise
            continue
        if condition(progress):
            return progress
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met; last progress: {progress!r}")
        await asyncio.sleep(0.1)


async def pending_offer(handle: Handle, seq: int | None = None) -> OfferView:
    """The open offer (the ``seq``-th one when given) once it has been made."""

    def ready(p: Progress) -> bool:
        offer = p.current_offer
        return offer is not None and offer.status == "pending" and (seq is None or offer.seq == seq)

    progress = await eventually(handle, ready)
    assert progress.current_offer is not None
    return progress.current_offer


async def outbox(
    db: Database, application: Handle | str | None = None, within_seconds: float = 20
) -> list[SmsOutbox]:
    """The SMS outbox, of one application when given.

    SMS go out beside the process (``send_sms`` activities): given a workflow handle, first wait
    until every delivery it has started so far has finished, sent or failed.
    """
    application_id = application if isinstance(application, str) else None
    if application is not None and not isinstance(application, str):
        application_id = application.id
        await asyncio.wait_for(deliveries_done(application), within_seconds)
    async with db.session() as session:
        query = sa.select(SmsOutbox).order_by(col(SmsOutbox.id))
        if application_id is not None:
            query = query.where(col(SmsOutbox.application_id) == application_id)
        return list(await session.scalars(query))


async def closed_sms(db: Database, application_id: str, within_seconds: float = 20) -> SmsOutbox:
    """The application's one CLOSED SMS, once its delivery has sent it."""
    deadline = asyncio.get_running_loop().time() + within_seconds
    while True:
        rows = [
            s
            for s in await outbox(db, application_id)
            if s.template == SmsTemplate.CLOSED and s.status == SmsStatus.SENT
        ]
        if rows:
            [row] = rows
            assert row.dedup_key == f"{application_id}:closed"
            return row
        assert asyncio.get_running_loop().time() < deadline, "no CLOSED SMS sent"
        await asyncio.sleep(0.2)


async def terminate_started_since(client: Client, since: datetime) -> None:
    """Leave nothing a test started running on the session's server (SMS deliveries too)."""
    query = f"ExecutionStatus = 'Running' AND StartTime > '{since.isoformat()}'"
    for workflow_id in [execution.id async for execution in client.list_workflows(query)]:
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(workflow_id).terminate(reason="test cleanup")


async def deliveries_done(handle: Handle, within_seconds: float = 20) -> None:
    """Wait for the SMS deliveries the application's runs have started so far: ``send_sms``
    activities beside the run, or SmsDelivery children (runs from before the change)."""
    deadline = asyncio.get_running_loop().time() + within_seconds
    while True:
        child_ids: list[str] = []
        started: set[int] = set()
        ended: set[int] = set()
        async for event in handle.fetch_history_events():
            if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
                child_ids.append(
                    event.start_child_workflow_execution_initiated_event_attributes.workflow_id
                )
            elif event.HasField("activity_task_scheduled_event_attributes"):
                if event.activity_task_scheduled_event_attributes.activity_type.name == "send_sms":
                    started.add(event.event_id)
            else:
                for field in (
                    "activity_task_completed_event_attributes",
                    "activity_task_failed_event_attributes",
                    "activity_task_canceled_event_attributes",
                    "activity_task_timed_out_event_attributes",
                ):
                    if event.HasField(field):
                        ended.add(getattr(event, field).scheduled_event_id)
        if started <= ended:
            break
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(started - ended)} SMS still being sent")
        await asyncio.sleep(0.1)
    for child_id in child_ids:
        # A failed delivery has its failed outbox row; waiting is all that matters here.
        with contextlib.suppress(WorkflowFailureError):
            await handle._client.get_workflow_handle(child_id).result()


async def audit_actions(db: Database, application_id: str) -> list[str]:
    async with db.session() as session:
        return list(
            await session.scalars(
                sa.select(col(AuditEvent.action))
                .where(col(AuditEvent.application_id) == application_id)
                .order_by(col(AuditEvent.id))
            )
        )


async def add_application(
    db: Database,
    *,
    mobile: str,
    application_id: str | None = None,
    person_id: int | None = None,
    id_number: str | None = None,
    disease_code: str = "HT",
    status: str = "in_review",
    stage: str = "initial_review",
    submitted_at: datetime | None = None,
    diagnosing_hospital: str = "H01",
    designated_hospital: str = "H01",
) -> str:
    """An application row written directly (no workflow), with a new insured person unless
    ``person_id`` names one; returns its ID."""
    application_id = application_id or f"APP-T-{uuid.uuid4().hex[:8].upper()}"
    submitted_at = submitted_at or datetime.now(UTC)
    async with db.session() as session:
        if person_id is None:
            person = InsuredPerson(
                id_number=id_number or f"T{uuid.uuid4().int % 10**17:017d}",
                name="测试",
                mobile=mobile,
                insurance_type=InsuranceType.EMPLOYEE,
                insurance_status=InsuranceStatus.NORMAL,
                region="sanmenxia",
            )
            session.add(person)
            await session.flush()
            person_id = person.id
        assert person_id is not None
        session.add(
            Application(
                id=application_id,
                region="sanmenxia",
                person_id=person_id,
                disease_code=disease_code,
                year=submitted_at.year,
                status=ApplicationStatus(status),
                stage=ReviewStage(stage),
                mobile=mobile,
                case_number="ZY-T",
                diagnosing_hospital_code=diagnosing_hospital,
                designated_hospital_code=designated_hospital,
                submitted_at=submitted_at,
            )
        )
    return application_id


async def audit_actors(db: Database, application_id: str, action: str) -> list[str]:
    async with db.session() as session:
        return list(
            await session.scalars(
                sa.select(col(AuditEvent.actor))
                .where(
                    col(AuditEvent.application_id) == application_id,
                    col(AuditEvent.action) == action,
                )
                .order_by(col(AuditEvent.id))
            )
        )


async def wait_closed(db: Database, application_id: str, within_seconds: float = 20) -> None:
    """Until the application row is closed (activities run in real time)."""
    deadline = asyncio.get_running_loop().time() + within_seconds
    while True:
        async with db.session() as session:
            row = await session.get(Application, application_id)
            if row is not None and row.closed_at is not None:
                return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"application {application_id} was not closed")
        await asyncio.sleep(0.1)


async def set_active(db: Database, codes: list[str]) -> None:
    async with db.session() as session:
        await session.exec(
            sa.update(Expert)
            .where(col(Expert.code).in_(codes))
            .values(status=ExpertStatus.ACTIVE, consecutive_strikes=0)
        )


async def expert(db: Database, code: str) -> Expert:
    async with db.session() as session:
        row = await session.get(Expert, code)
        assert row is not None
        return row


async def keep_only_active(db: Database, category: str, codes: list[str]) -> None:
    """Shrink a category's pool to ``codes`` so a test knows who can be drawn."""
    async with db.session() as session:
        await session.exec(
            sa.update(Expert)
            .where(col(Expert.categories).contains([category]), col(Expert.code).not_in(codes))
            .values(status=ExpertStatus.INACTIVE)
        )


async def experts_of(db: Database, category: str, *, hospital_not: str = "H01") -> list[str]:
    async with db.session() as session:
        return list(
            await session.scalars(
                sa.select(col(Expert.code))
                .where(
                    col(Expert.categories).contains([category]),
                    col(Expert.status) == ExpertStatus.ACTIVE,
                    col(Expert.hospital_code) != hospital_not,
                )
                .order_by(col(Expert.code))
            )
        )


def waits_for_resubmission(progress: Progress) -> bool:
    """Returned (or materials requested), SMS sent, and the window open for the clerk."""
    return progress.resubmission_deadline is not None and "resubmit" in progress.waiting_for

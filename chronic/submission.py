"""Submitting an application: record it in Postgres, then start its workflow.

The application row and its materials are written and the workflow is started inside one
database transaction: if Temporal refuses the start, nothing is left behind; if two clerks
submit for the same person and disease at once, the partial unique index on open
applications lets exactly one through. Personal data stays in the row; the workflow gets the
application ID, the disease and an HMAC of the ID number.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from chronic.db import Database
from chronic.privacy import applicant_key
from chronic.settings import Settings
from models.application import ApplicationForm
from models.domain import ApplicationStatus, ReviewStage
from models.messages import ApplicationInput
from models.policy import PolicyProfile
from models.tables import Application, Hospital, InsuredPerson, Material
from workers import queues
from workflows.application import ApplicationWorkflow

_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read out over the phone


class SubmissionRefused(Exception):
    """The application was not started; ``problems`` say why and what to do."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def new_application_id(now: datetime, zone: timezone) -> str:
    """``APP-20261123-7K3QF9``: the date of submission and six random characters."""
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))
    return f"APP-{now.astimezone(zone):%Y%m%d}-{suffix}"


async def submit(
    form: ApplicationForm,
    *,
    client: Client,
    db: Database,
    settings: Settings,
    policy: PolicyProfile | None = None,
    search_attributes: bool = True,
) -> str:
    """Record ``form`` and start its workflow; returns the application ID.

    Args:
        policy: the rules to decide by; defaults to the region's profile (demos and tests
            pass one with shortened windows).
        search_attributes: False only against a server without the product's attributes.

    Raises:
        SubmissionRefused: unknown person or hospital, or an open application already exists.
    """
    policy = policy or settings.policy(form.region)
    zone = timezone(timedelta(hours=policy.timezone_offset_hours))
    now = datetime.now(UTC)
    application_id = new_application_id(now, zone)
    try:
        await _record_and_start(
            form, application_id, now, zone, client, db, settings, policy, search_attributes
        )
    except _AlreadyOpen as already:
        # The failed transaction is rolled back by now; explain from a fresh one.
        raise SubmissionRefused(
            [await _already_open(db, already.person_id, form.disease_code)]
        ) from None
    return application_id


class _AlreadyOpen(Exception):
    def __init__(self, person_id: int) -> None:
        self.person_id = person_id


async def _record_and_start(
    form: ApplicationForm,
    application_id: str,
    now: datetime,
    zone: timezone,
    client: Client,
    db: Database,
    settings: Settings,
    policy: PolicyProfile,
    search_attributes: bool,
) -> None:
    async with db.session() as session:
        person = await session.scalar(
            sa.select(InsuredPerson).where(col(InsuredPerson.id_number) == form.applicant.id_number)
        )
        problems = await _unknown_hospitals(session, form)
        if person is None:
            problems.insert(
                0,
                "applicant.id_number: no insured person with this ID number in the register; "
                "check the number, or register the person's insurance at the office first",
            )
        if problems:
            raise SubmissionRefused(problems)
        assert person is not None and person.id is not None
        person_id = person.id  # a failed flush expires the object; keep the plain value
        session.add(
            Application(
                id=application_id,
                region=policy.region,
                person_id=person_id,
                disease_code=form.disease_code,
                year=now.astimezone(zone).year,
                status=ApplicationStatus.SUBMITTED,
                stage=ReviewStage.INTAKE,
                mobile=form.applicant.mobile,
                case_number=form.case_number,
                diagnosing_hospital_code=form.diagnosing_hospital,
                designated_hospital_code=form.designated_hospital,
                submitted_by=form.submitted_by,
                submitted_at=now,
            )
        )
        try:
            await session.flush()
        except IntegrityError as error:
            if "uq_application_open_per_person_disease" not in str(error.orig):
                raise
            raise _AlreadyOpen(person_id) from None
        session.add_all(
            Material(
                application_id=application_id,
                round=1,
                position=i,
                kind=m.kind,
                hospital_code=m.hospital,
                issued_on=m.issued_on,
                file_ref=m.file,
                sha256=m.sha256,
            )
            for i, m in enumerate(form.materials)
        )
        await session.flush()
        disease = policy.disease(form.disease_code)
        assert disease is not None  # the form validated the code against this catalogue
        await client.start_workflow(
            ApplicationWorkflow.run,
            ApplicationInput(
                application_id=application_id,
                policy=policy,
                disease_code=form.disease_code,
                applicant_key=applicant_key(form.applicant.id_number, settings),
                submitted_at=now,
                search_attributes=search_attributes,
            ),
            id=application_id,
            task_queue=queues.APPLICATIONS,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=f"{application_id} · {policy.region} · {disease.code} {disease.name}",
            static_details=(
                f"Application **{application_id}** for **{disease.name}** ({disease.code}, "
                f"category {disease.category}, "
                f"{'instant track' if disease.instant_track else 'two-stage review'}) "
                f"under the **{policy.name}** rules."
            ),
        )


async def _unknown_hospitals(session: AsyncSession, form: ApplicationForm) -> list[str]:
    wanted = {
        "diagnosing_hospital": form.diagnosing_hospital,
        "designated_hospital": form.designated_hospital,
        **{f"materials[{i}].hospital": m.hospital for i, m in enumerate(form.materials)},
    }
    known = set(
        await session.scalars(
            sa.select(col(Hospital.code)).where(col(Hospital.code).in_(set(wanted.values())))
        )
    )
    return [
        f"{path}: no hospital with code {code} in the register; check the code with the "
        "hospital's insurance desk"
        for path, code in wanted.items()
        if code not in known
    ]


async def _already_open(db: Database, person_id: int, disease_code: str) -> str:
    async with db.session() as session:
        open_one = await session.scalar(
            sa.select(Application).where(
                col(Application.person_id) == person_id,
                col(Application.disease_code) == disease_code,
                col(Application.closed_at).is_(None),
            )
        )
    which = f"{open_one.id} ({open_one.status})" if open_one else "another application"
    return (
        f"this person already has an open application for {disease_code}: {which}. "
        f"Follow it with `chronic status {open_one.id if open_one else 'APP'}`; a new one can be "
        "submitted once it is decided or closed"
    )

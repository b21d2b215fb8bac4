"""Submitting an out-of-area filing: record it in Postgres, commit, then start its workflow.

The same order as applications (:mod:`chronic.submission`): the row, its uploads and the audit
event of whoever submitted it are committed first, then the workflow is started under the
filing ID. If Temporal does not answer, the committed row stays and the review worker's
reconciler starts the workflow with the same input (:func:`filing_input`). One filing in
progress per person: the partial unique index on open filings lets one row through. Personal
data stays in the database; the workflow gets the filing ID, its type, the register region and
an HMAC of the ID number.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from activities import audit
from activities.filing import apply_filing_status
from chronic.db import Database
from chronic.privacy import applicant_key
from chronic.settings import Settings
from chronic.sms.delivery import start_delivery
from chronic.submission import StartDeferred, SubmissionRefused
from models.domain import FilingStatus, FilingType
from models.filing import (
    INSURED_PLACES,
    FilingForm,
    FilingInput,
    FilingProgress,
    FilingRules,
    FilingStatusChange,
)
from models.messages import CLOSE_SEQ
from models.notifications import filing_closed_sms
from models.tables import FilingRecord, FilingUpload, InsuredPerson
from models.text import clip
from workers import queues
from workflows.filing import OutOfAreaFilingWorkflow

SUBMITTED_ACTION = "filing_submitted"
"""The audit action of a submission (actor: whoever submitted it)."""

_START_TIMEOUT = timedelta(seconds=10)
_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read out over the phone
_ZONE = timezone(timedelta(hours=FilingRules().timezone_offset_hours))

__all__ = [
    "SUBMITTED_ACTION",
    "StartDeferred",
    "SubmissionRefused",
    "close_filing",
    "filing_input",
    "new_filing_id",
    "start_filing",
    "submit_filing",
]


def new_filing_id(now: datetime) -> str:
    """``FIL-20261123-7K3QF9``: the local date of submission and six random characters."""
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))
    return f"FIL-{now.astimezone(_ZONE):%Y%m%d}-{suffix}"


async def submit_filing(
    form: FilingForm,
    *,
    client: Client | None,
    db: Database,
    settings: Settings,
    actor: str = "system",
    rules: FilingRules | None = None,
    search_attributes: bool = True,
) -> str:
    """Record ``form``, commit, then start its workflow; returns the filing ID.

    Args:
        client: None when Temporal could not be reached: the filing is recorded and
            :class:`StartDeferred` raised.
        actor: who submits (``operator:<name>``), for the audit trail.
        rules: the rules to decide by (tests shorten nothing here, but may tighten them).

    Raises:
        SubmissionRefused: no such insured person, or a filing of theirs is in progress;
            nothing was recorded.
        StartDeferred: the filing is recorded (its ID in the error) but Temporal did not
            answer; the reconciler starts its workflow later.
    """
    now = datetime.now(UTC)
    filing_id = new_filing_id(now)
    await _record(form, filing_id, now, db, actor)
    request = filing_input(
        filing_id,
        filing_type=form.filing_type,
        insured_place=form.insured_place,
        id_number=form.applicant.id_number,
        submitted_at=now,
        settings=settings,
        rules=rules,
        search_attributes=search_attributes,
    )
    if client is None:
        raise StartDeferred(filing_id, "Temporal could not be reached")
    try:
        await start_filing(client, request)
    except (RPCError, RuntimeError) as error:
        raise StartDeferred(filing_id, _plain(error)) from None
    return filing_id


def filing_input(
    filing_id: str,
    *,
    filing_type: FilingType,
    insured_place: str,
    id_number: str,
    submitted_at: datetime,
    settings: Settings,
    rules: FilingRules | None = None,
    search_attributes: bool = True,
) -> FilingInput:
    """The start argument of a filing's workflow (submission and the reconciler)."""
    place = INSURED_PLACES.get(insured_place)
    return FilingInput(
        filing_id=filing_id,
        region=place.region if place is not None else insured_place,
        filing_type=filing_type,
        applicant_key=applicant_key(id_number, settings),
        submitted_at=submitted_at,
        rules=rules or FilingRules(),
        search_attributes=search_attributes,
    )


async def start_filing(
    client: Client, request: FilingInput
) -> WorkflowHandle[OutOfAreaFilingWorkflow, FilingProgress]:
    """Start the workflow of a recorded filing; at most one run per filing, ever."""
    kind = "long-term" if request.filing_type.long_term else "temporary"
    return await client.start_workflow(
        OutOfAreaFilingWorkflow.run,
        request,
        id=request.filing_id,
        task_queue=queues.APPLICATIONS,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        rpc_timeout=_START_TIMEOUT,
        static_summary=f"{request.filing_id} · out-of-area filing · {request.filing_type}",
        static_details=(
            f"Out-of-area care filing **{request.filing_id}** ({request.filing_type}, {kind}), "
            f"insured in {request.region}."
        ),
    )


async def close_filing(
    db: Database, client: Client, filing_id: str, *, reason: str, sms_reason: str, actor: str
) -> bool:
    """Close an open filing whose workflow has ended without deciding, and tell the person.

    The SMS (key ``FIL:closed``, the workflow's own) is started first, so a crash in between
    leaves an open row for the next pass, never a closed one whose person was not told.
    Returns True when this call closed the row.
    """
    await start_delivery(client, filing_closed_sms(filing_id, sms_reason))
    change = FilingStatusChange(
        filing_id=filing_id,
        status=FilingStatus.CLOSED,
        at=datetime.now(UTC),
        step="closed:outside",
        seq=CLOSE_SEQ,
        actor=actor,
        reasons=(clip(reason, 2000),),
        closed=True,
    )
    async with db.session() as session:
        return await apply_filing_status(session, change, only_open=True)


def _plain(error: Exception) -> str:
    text = str(error).removeprefix("Failed client connect:").strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


async def _record(
    form: FilingForm, filing_id: str, now: datetime, db: Database, actor: str
) -> None:
    """Write the row, its uploads and the audit event, and commit."""
    try:
        async with db.session() as session:
            person = await session.scalar(
                sa.select(InsuredPerson).where(
                    col(InsuredPerson.id_number) == form.applicant.id_number
                )
            )
            if person is None or person.id is None:
                raise SubmissionRefused(
                    [
                        "applicant.id_number: no insured person with this ID number in the "
                        "register; check the number, or register the person's insurance at the "
                        "office first"
                    ]
                )
            person_id = person.id
            session.add(
                FilingRecord(
                    id=filing_id,
                    person_id=person_id,
                    mobile=form.applicant.mobile,
                    insured_place=form.insured_place,
                    destination_province=form.destination.province,
                    destination_city=form.destination.city,
                    insurance_type=form.insurance_type,
                    filing_type=form.filing_type,
                    start_date=form.start_date,
                    end_date=form.end_date,
                    contact_name=form.contact.name,
                    contact_mobile=form.contact.mobile,
                    status=FilingStatus.SUBMITTED,
                    submitted_at=now,
                )
            )
            await session.flush()
            session.add_all(
                FilingUpload(
                    filing_id=filing_id,
                    position=i,
                    kind=upload.kind,
                    file_ref=upload.file,
                    sha256=upload.sha256,
                )
                for i, upload in enumerate(form.uploads)
            )
            await audit.record(
                session,
                step_key=f"{filing_id}:submitted",
                application_id=None,
                filing_id=filing_id,
                actor=actor,
                action=SUBMITTED_ACTION,
                at=now,
                filing_type=form.filing_type.value,
                uploads=len(form.uploads),
            )
    except IntegrityError as error:
        if "uq_filing_open_per_person" not in str(error.orig):
            raise
        raise SubmissionRefused([await _in_progress(db, form.applicant.id_number)]) from None


async def _in_progress(db: Database, id_number: str) -> str:
    async with db.session() as session:
        open_one = await session.scalar(
            sa.select(FilingRecord)
            .join(InsuredPerson, col(InsuredPerson.id) == col(FilingRecord.person_id))
            .where(
                col(InsuredPerson.id_number) == id_number,
                col(FilingRecord.closed_at).is_(None),
            )
        )
    which = f"{open_one.id} ({open_one.status})" if open_one else "another filing"
    return (
        f"this person already has a filing in progress: {which}. Follow it with "
        f"`chronic filing status {open_one.id if open_one else 'FIL'}`; a new one can be "
        "submitted once it is decided"
    )

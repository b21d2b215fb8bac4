"""Out-of-area care filing (异地就医备案): its checks, its status writes, and the long-term check.

Two roles run these, each on its own task queue (names in :mod:`models.filing`):

- **intake** (:class:`FilingIntakeActivities`): ``check_filing`` applies the filing's rules to
  the register — insured here and normally, the insurance type the register has, a start date
  within the office's window around the submission, the uploads its type needs — and
  ``valid_long_term_filing``, the question Jilin's remote applications ask (seed 003);
- **review** (:class:`FilingRecordActivities`): ``record_filing_status``, the filing's status
  writes with their audit events (ordered by ``seq``, idempotent per step), as for applications.

:func:`valid_long_term_filing` is also a plain function over a session, for an activity that
already holds one (an intake check of a Jilin application in its own transaction).
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities import audit
from activities.errors import missing_record
from chronic.db import Database
from models.domain import (
    FilingStatus,
    FilingType,
    FilingUploadKind,
    InsuranceStatus,
    InsuranceType,
)
from models.filing import (
    INSURED_PLACES,
    FilingCheck,
    FilingCheckRequest,
    FilingRef,
    FilingRules,
    FilingStatusChange,
    LongTermFilingQuery,
    destination_label,
    missing_uploads,
    validity,
)
from models.roles.intake import FilingIntakeRole
from models.roles.review import FilingReviewRole
from models.tables import FilingRecord, FilingUpload, InsuredPerson

_INSURANCE = {
    InsuranceType.EMPLOYEE: "employee (职工医保)",
    InsuranceType.RESIDENT: "urban-rural resident (城乡居民医保)",
}
_LONG_TERM = [kind.value for kind in FilingType if kind.long_term]


async def valid_long_term_filing(
    session: AsyncSession, person_id: int, on: date
) -> FilingRef | None:
    """The person's long-term out-of-area filing valid on ``on``, or None.

    Seed 003 (Jilin): an applicant living elsewhere needs "有效的长期异地就医备案". Valid means:
    status ``filed`` (not refused, expired or closed), a long-term filing type
    (:attr:`FilingType.long_term`: long-term residence, retired and resettled, stationed
    worker — a referral or a temporary outing does not count), ``valid_from <= on`` (a filing
    starting later does not count yet) and no ``valid_to`` before ``on``. Of several, the one
    that started last.
    """
    row = await session.scalar(
        sa.select(FilingRecord)
        .where(
            col(FilingRecord.person_id) == person_id,
            col(FilingRecord.status) == FilingStatus.FILED.value,
            col(FilingRecord.filing_type).in_(_LONG_TERM),
            col(FilingRecord.valid_from) <= on,
            sa.or_(col(FilingRecord.valid_to).is_(None), col(FilingRecord.valid_to) >= on),
        )
        .order_by(col(FilingRecord.valid_from).desc(), col(FilingRecord.submitted_at).desc())
        .limit(1)
    )
    if row is None or row.valid_from is None:
        return None
    return FilingRef(
        filing_id=row.id,
        filing_type=row.filing_type,
        destination_province=row.destination_province,
        destination_city=row.destination_city,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
    )


class FilingIntakeActivities(FilingIntakeRole):
    """The intake role's part of a filing: its rules against the register (read only)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="check_filing")
    async def check_filing(self, request: FilingCheckRequest) -> FilingCheck:
        """Filed with its validity, or refused with every reason (see the module docstring)."""
        rules, submitted_on = request.rules, request.submitted_on
        async with self.db.session() as session:
            filing = await session.get(FilingRecord, request.filing_id)
            if filing is None:
                raise missing_record("filing", request.filing_id)
            person = await session.get(InsuredPerson, filing.person_id)
            assert person is not None  # foreign key
            kinds = set(
                await session.scalars(
                    sa.select(col(FilingUpload.kind)).where(
                        col(FilingUpload.filing_id) == filing.id
                    )
                )
            )
        # Columns hold the enums' values: typed again here.
        kind, insured_as = FilingType(filing.filing_type), InsuranceType(filing.insurance_type)
        registered_as = InsuranceType(person.insurance_type)
        uploaded = {FilingUploadKind(k) for k in kinds}
        reasons: list[str] = []
        if person.insurance_status != InsuranceStatus.NORMAL:
            reasons.append(
                f"insurance status is {person.insurance_status}: only persons insured normally "
                "can file; settle the insurance status at the office first"
            )
        place = INSURED_PLACES.get(filing.insured_place)
        if place is None or person.region != place.region:
            where = place.name if place is not None else filing.insured_place
            reasons.append(
                f"the register does not insure this person in {where}: file where the person "
                "is insured"
            )
        if insured_as != registered_as:
            reasons.append(
                f"the filing names {_INSURANCE[insured_as]} insurance, the register has "
                f"{_INSURANCE[registered_as]}: choose the insurance the person has"
            )
        reasons += _date_problems(filing.start_date, filing.end_date, submitted_on, rules)
        reasons += missing_uploads(kind, uploaded)
        destination = destination_label(filing.destination_province, filing.destination_city)
        if reasons:
            return FilingCheck(filed=False, reasons=tuple(reasons), destination=destination)
        valid_from, valid_to = validity(kind, filing.start_date, filing.end_date, rules)
        return FilingCheck(
            filed=True, valid_from=valid_from, valid_to=valid_to, destination=destination
        )

    @activity.defn(name="valid_long_term_filing")
    async def valid_long_term_filing(self, query: LongTermFilingQuery) -> FilingRef | None:
        """The person's long-term filing valid on ``query.on``, or None (seed 003; see
        :func:`valid_long_term_filing`)."""
        async with self.db.session() as session:
            return await valid_long_term_filing(session, query.person_id, query.on)


def _date_problems(
    start: date, end: date | None, submitted_on: date, rules: FilingRules
) -> list[str]:
    """The office's window for the start date around the submission, and an end not past."""
    problems: list[str] = []
    earliest = submitted_on - timedelta(days=rules.start_days_before)
    latest = submitted_on + timedelta(days=rules.start_days_ahead)
    if start < earliest:
        problems.append(
            f"the start date {start.isoformat()} is more than {rules.start_days_before} days "
            f"before the filing was submitted ({submitted_on.isoformat()}): care that long ago "
            "is reimbursed at the office, not filed"
        )
    elif start > latest:
        problems.append(
            f"the start date {start.isoformat()} is more than {rules.start_days_ahead} days "
            f"after the filing was submitted ({submitted_on.isoformat()}): file again closer "
            "to the date"
        )
    if end is not None and end < submitted_on:
        problems.append(
            f"the end date {end.isoformat()} had passed when the filing was submitted "
            f"({submitted_on.isoformat()}): nothing is left to file"
        )
    return problems


class FilingRecordActivities(FilingReviewRole):
    """The review role's part of a filing: its status writes, each with an audit event."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="record_filing_status")
    async def record_filing_status(self, change: FilingStatusChange) -> bool:
        """Move the filing row to ``change.status``; applied only when ``change.seq`` is newer
        than the row's (a late retry changes nothing). Returns whether it was applied.

        Raises:
            ApplicationError: non-retryable, when there is no such filing.
        """
        async with self.db.session() as session:
            return await apply_filing_status(session, change)


async def apply_filing_status(
    session: AsyncSession, change: FilingStatusChange, *, only_open: bool = False
) -> bool:
    """Write ``change`` if it is newer than the row's status, with its audit event.

    ``only_open``: apply only to a filing not closed yet (closes made outside the workflow).
    """
    values: dict[str, object] = {"status": change.status.value, "status_seq": change.seq}
    if change.closed:
        values["closed_at"] = change.at
    if change.status is FilingStatus.EXPIRED:
        values["expired_at"] = change.at
    if change.reasons:
        values["reasons"] = list(change.reasons)
    if change.valid_from is not None:
        values["valid_from"] = change.valid_from
        values["valid_to"] = change.valid_to
    update = sa.update(FilingRecord).where(
        col(FilingRecord.id) == change.filing_id, col(FilingRecord.status_seq) < change.seq
    )
    if only_open:
        update = update.where(col(FilingRecord.closed_at).is_(None))
    result = await session.exec(update.values(**values))
    if result.rowcount == 0:
        exists = await session.scalar(
            sa.select(col(FilingRecord.id)).where(col(FilingRecord.id) == change.filing_id)
        )
        if exists is None:
            raise missing_record("filing", change.filing_id)
        return False
    await audit.record(
        session,
        step_key=f"{change.filing_id}:{change.step}",
        application_id=None,
        filing_id=change.filing_id,
        actor=change.actor,
        action=f"filing_{change.status}",
        at=change.at,
        reasons=list(change.reasons),
        seq=change.seq,
    )
    return True


__all__ = [
    "FilingIntakeActivities",
    "FilingRecordActivities",
    "apply_filing_status",
    "valid_long_term_filing",
]

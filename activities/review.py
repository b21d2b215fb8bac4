"""Review records on the ``review`` queue: decisions, status changes, benefit certificates."""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities import audit, metrics
from activities.assignment import complete_offer, withdraw_open_offers
from activities.errors import missing_record
from chronic.db import Database
from models.domain import OfferStatus
from models.messages import (
    BenefitIssued,
    BenefitRequest,
    OfficeNoticeRequest,
    ReviewRecord,
    StatusChange,
)
from models.roles.review import ReviewRole
from models.tables import Application, Benefit, Hospital, OfficeNotice, Review

log = logging.getLogger(__name__)


class ReviewActivities(ReviewRole):
    """Writes what reviewers and the process decided; every write is idempotent per step."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn
    async def record_review(self, review: ReviewRecord) -> OfferStatus | None:
        """Store an expert's decision (or materials request) on one offer; with
        ``completes_offer``, the decision also ends the offer, in the same transaction, and
        the offer's status after is returned."""
        async with self.db.session() as session:
            status = None
            if review.completes_offer:  # the offer row first: the lock order of answer_offer
                status = await complete_offer(session, review.offer_id, review.decided_at)
            await session.exec(
                insert(Review)
                .values(
                    application_id=review.application_id,
                    offer_id=review.offer_id,
                    seq=review.seq,
                    stage=review.stage.value,
                    expert_code=review.expert_code,
                    decision=review.decision.value,
                    opinion=review.opinion,
                    decided_at=review.decided_at,
                )
                .on_conflict_do_nothing(index_elements=["offer_id", "seq"])
            )
            await audit.record(
                session,
                step_key=f"{review.application_id}:review:{review.offer_id}:{review.seq}",
                application_id=review.application_id,
                actor=f"expert:{review.expert_code}",
                action=f"review_{review.decision}",
                at=review.decided_at,
                stage=review.stage.value,
                opinion=review.opinion,
            )
            return status

    @activity.defn
    async def change_status(self, change: StatusChange) -> bool:
        """Move the application row to a new status and stage, with an audit event.

        Applied only when ``change.seq`` is greater than the row's ``status_seq``: a retry that
        arrives after a newer write (a zombie attempt, a replay after a reset) changes nothing.
        Returns whether the write was applied.
        """
        async with self.db.session() as session:
            applied = await apply_status(session, change)
            if applied:
                metrics.application_status(change.status.value)
            return applied

    @activity.defn
    async def office_notice(self, notice: OfficeNoticeRequest) -> None:
        """Put a notice on the office's desk (once per step key), or mark it resolved."""
        async with self.db.session() as session:
            if notice.resolved:
                await session.exec(
                    sa.update(OfficeNotice)
                    .where(
                        col(OfficeNotice.step_key) == notice.step_key,
                        col(OfficeNotice.resolved_at).is_(None),
                    )
                    .values(resolved_at=notice.at)
                )
                return
            result = await session.exec(
                insert(OfficeNotice)
                .values(
                    step_key=notice.step_key,
                    application_id=notice.application_id,
                    kind=notice.kind,
                    message=notice.message[:2000],
                    at=notice.at,
                )
                .on_conflict_do_nothing(index_elements=["step_key"])
            )
            if result.rowcount:
                activity.logger.warning(
                    "office notice %s for %s: %s",
                    notice.kind,
                    notice.application_id,
                    notice.message,
                )

    @activity.defn
    async def issue_benefit(self, request: BenefitRequest) -> BenefitIssued:
        """Create the benefit certificate (待遇认定表); it starts on the approval date."""
        async with self.db.session() as session:
            application = await session.get(Application, request.application_id)
            if application is None:
                raise missing_record("application", request.application_id)
            valid_to = (
                None
                if request.validity_days is None
                else request.approved_on + timedelta(days=request.validity_days - 1)
            )
            await session.exec(
                insert(Benefit)
                .values(
                    application_id=application.id,
                    person_id=application.person_id,
                    disease_code=application.disease_code,
                    designated_hospital_code=application.designated_hospital_code,
                    valid_from=request.approved_on,
                    valid_to=valid_to,
                )
                .on_conflict_do_nothing(index_elements=["application_id"])
            )
            benefit = await session.scalar(
                sa.select(Benefit).where(col(Benefit.application_id) == application.id)
            )
            hospital = await session.get(Hospital, application.designated_hospital_code)
            assert benefit is not None and hospital is not None
            return BenefitIssued(
                valid_from=benefit.valid_from,
                valid_to=benefit.valid_to,
                designated_hospital_name=hospital.name,
            )


async def apply_status(
    session: AsyncSession, change: StatusChange, *, only_open: bool = False
) -> bool:
    """Write ``change`` if it is newer than the row's status (and its audit event); see above.

    ``only_open``: apply only to a row not closed yet (closes made outside the workflow).

    Raises:
        ApplicationError: non-retryable, when there is no such application.
    """
    values: dict[str, object] = {
        "status": change.status.value,
        "stage": change.stage.value,
        "status_seq": change.seq,
    }
    if change.closed:
        values["closed_at"] = change.at
    if change.reason is not None:
        values["outcome_reason"] = change.reason[:2000]
    update = (
        sa.update(Application)
        .where(col(Application.id) == change.application_id)
        .where(col(Application.status_seq) < change.seq)
    )
    if only_open:
        update = update.where(col(Application.closed_at).is_(None))
    result = await session.exec(update.values(**values))
    if result.rowcount == 0:
        current = await session.scalar(
            sa.select(col(Application.status_seq)).where(
                col(Application.id) == change.application_id
            )
        )
        if current is None:
            raise missing_record("application", change.application_id)
        log.info(
            "status write %s of %s skipped: seq %d is not newer than %d (or the row is closed)",
            change.step,
            change.application_id,
            change.seq,
            current,
        )
        return False
    if change.closed:
        reason = f"application closed: {change.reason or change.status}"
        await withdraw_open_offers(session, change.application_id, at=change.at, reason=reason)
    await audit.record(
        session,
        step_key=f"{change.application_id}:{change.step}",
        application_id=change.application_id,
        actor=change.actor,
        action=f"status_{change.status}",
        at=change.at,
        stage=change.stage.value,
        reason=change.reason,
        seq=change.seq,
        **change.detail,
    )
    return True

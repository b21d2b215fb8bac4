"""Review records on the ``review`` queue: decisions, status changes, benefit certificates."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from temporalio import activity

from activities import audit, metrics
from activities.errors import missing_record
from chronic.db import Database
from models.messages import (
    BenefitIssued,
    BenefitRequest,
    OfficeNoticeRequest,
    ReviewRecord,
    StatusChange,
)
from models.tables import Application, Benefit, Hospital, OfficeNotice, Review


class ReviewActivities:
    """Writes what reviewers and the process decided; every write is idempotent per step."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn
    async def record_review(self, review: ReviewRecord) -> None:
        """Store an expert's decision (or materials request) on one offer."""
        async with self.db.session() as session:
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

    @activity.defn
    async def change_status(self, change: StatusChange) -> None:
        """Move the application row to a new status and stage, with an audit event.

        Writes are ordered by the workflow's ``seq``: a late retry of an older write finds a
        newer status in place and changes nothing.
        """
        async with self.db.session() as session:
            values: dict[str, object] = {
                "status": change.status.value,
                "stage": change.stage.value,
                "status_seq": change.seq,
            }
            if change.closed:
                values["closed_at"] = change.at
            if change.reason is not None:
                values["outcome_reason"] = change.reason[:2000]
            result = await session.exec(
                sa.update(Application)
                .where(
                    col(Application.id) == change.application_id,
                    col(Application.status_seq) < change.seq,
                )
                .values(**values)
            )
            if result.rowcount == 0:
                if await session.get(Application, change.application_id) is None:
                    raise missing_record("application", change.application_id)
                activity.logger.info(
                    "status %s of %s (seq %d) is older than the recorded one; not applied",
                    change.status,
                    change.application_id,
                    change.seq,
                )
                return
            first_time = await audit.record(
                session,
                step_key=f"{change.application_id}:{change.step}",
                application_id=change.application_id,
                actor=change.actor,
                action=f"status_{change.status}",
                at=change.at,
                stage=change.stage.value,
                reason=change.reason,
            )
            if first_time:
                metrics.application_status(change.status.value)

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

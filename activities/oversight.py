"""Oversight records on the ``review`` queue: the monthly expert statistic per hospital and
the monthly audit sample of approvals."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from temporalio import activity

from activities import audit
from chronic.audits import draw_sample
from chronic.db import Database
from chronic.reports.experts import ExpertMonth, as_csv, expert_month
from models.oversight import (
    AuditSampleDrawn,
    AuditSampleRequest,
    ExpertMonthRecorded,
    ExpertMonthRequest,
    HospitalMonth,
)
from models.roles.review import OversightRole
from models.tables import ExpertReport, Hospital


class OversightActivities(OversightRole):
    """Counts what experts did and keeps each hospital's report as sent."""

    def __init__(self, db: Database, *, draw_key: bytes) -> None:
        self.db = db
        self.draw_key = draw_key  # the office's key: audit samples are drawn verifiably

    @activity.defn
    async def draw_audit_sample(self, request: AuditSampleRequest) -> AuditSampleDrawn:
        """Draw the period's audit sample and open its tasks (a period is drawn once)."""
        if request.period is None:
            raise ValueError("the workflow names the period")
        async with self.db.session() as session:
            drawn = await draw_sample(
                session,
                region=request.region,
                period=request.period,
                rate=request.rate,
                key=self.draw_key,
                zone=timezone(timedelta(hours=request.timezone_offset_hours)),
                now=datetime.now(UTC),
                actor="system:schedule",
            )
        return AuditSampleDrawn(
            region=request.region,
            period=request.period,
            approvals=len(drawn.sample.population),
            sampled=[t.application_id for t in drawn.tasks],
            seed=drawn.sample.seed,
            created=drawn.created,
        )

    @activity.defn
    async def record_expert_month(self, request: ExpertMonthRequest) -> ExpertMonthRecorded:
        """Count the month and store one report per hospital; a retry rewrites the same rows."""
        if request.month is None:
            raise ValueError("the workflow names the month")
        zone = timezone(timedelta(hours=request.timezone_offset_hours))
        now = datetime.now(UTC)
        async with self.db.session() as session:
            lines = await expert_month(
                session, region=request.region, month=request.month, zone=zone
            )
            by_hospital: dict[str, list[ExpertMonth]] = defaultdict(list)
            for line in lines:
                by_hospital[line.hospital_code].append(line)
            desks = set(
                await session.scalars(
                    sa.select(col(Hospital.code)).where(
                        col(Hospital.code).in_(by_hospital), col(Hospital.notice_mobile).isnot(None)
                    )
                )
            )
            hospitals = []
            for code, rows in sorted(by_hospital.items()):
                report = as_csv(rows)
                await session.exec(
                    insert(ExpertReport)
                    .values(
                        region=request.region,
                        month=request.month,
                        hospital_code=code,
                        csv=report,
                        created_at=now,
                    )
                    .on_conflict_do_update(
                        index_elements=["region", "month", "hospital_code"],
                        set_={"csv": report, "created_at": now},
                    )
                )
                hospitals.append(
                    HospitalMonth(
                        hospital_code=code,
                        experts=len(rows),
                        offers=sum(r.offers for r in rows),
                        accepted=sum(r.accepted for r in rows),
                        declined=sum(r.declined for r in rows),
                        lapsed=sum(r.lapsed + r.decision_lapsed for r in rows),
                        notice_mobile=code in desks,
                    )
                )
            await audit.record(
                session,
                step_key=f"expert-month:{request.region}:{request.month}",
                application_id=None,
                actor="system:schedule",
                action="expert_month_reported",
                at=now,
                month=request.month,
                hospitals=len(hospitals),
            )
        return ExpertMonthRecorded(region=request.region, month=request.month, hospitals=hospitals)

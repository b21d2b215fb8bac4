"""The operators' overview (`chronic report overview`): where the applications stand.

Counts by region and status, open applications by stage, decisions within and beyond the
policy's working-day target, the median working days from submission to decision, and the
approvals and new benefits month by month. Working days are counted on the office's holiday
calendar (:mod:`chronic.workdays`), as the SLA target is.

The hall's office pages list the applications behind these counts with
:func:`applications_with_clock`: the same query, the same working-day clock
(:func:`working_days`), so a page's list and the report's counts agree.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from chronic.workdays import WorkdayCalendar
from models.domain import ApplicationStatus
from models.policy import PolicyProfile
from models.tables import Application, Benefit, InsuredPerson

DECIDED = (ApplicationStatus.APPROVED, ApplicationStatus.REJECTED)


@dataclass
class RegionOverview:
    region: str
    sla_working_days_max: int
    by_status: Counter[str] = field(default_factory=Counter)
    open_by_stage: Counter[str] = field(default_factory=Counter)
    decision_working_days: list[int] = field(default_factory=list)
    decided_late: int = 0  # decided beyond the target
    open_overdue: int = 0  # still open and already beyond the target
    approvals_by_month: Counter[str] = field(default_factory=Counter)
    benefits_by_month: Counter[str] = field(default_factory=Counter)

    @property
    def median_working_days(self) -> float | None:
        days = self.decision_working_days
        return statistics.median(days) if days else None

    @property
    def sla_breaches(self) -> int:
        return self.decided_late + self.open_overdue


def working_days(
    calendar: WorkdayCalendar, submitted_at: datetime, until: datetime, zone: timezone
) -> int:
    """Working days from the local day of submission to the local day of ``until``."""
    return calendar.working_days_between(
        submitted_at.astimezone(zone).date(), until.astimezone(zone).date()
    )


def _columns() -> Any:
    """The columns the overview counts by (and the office's list shows)."""
    return sa.select(
        col(Application.region),
        col(Application.status),
        col(Application.stage),
        col(Application.submitted_at),
        col(Application.closed_at),
    )


@dataclass(frozen=True)
class ClockedApplication:
    """One application with its working-day clock against the policy's target."""

    application_id: str
    region: str
    status: str
    stage: str
    submitted_at: datetime
    closed_at: datetime | None
    working_days: int  # to the decision, or to today while open
    target: int  # the policy's working-day limit (0: none)
    applicant: str
    submitted_by: str
    submitting_hospital: str | None

    @property
    def overdue(self) -> bool:
        """Beyond the target: decided late (approved, rejected), or open and past it."""
        counted = self.closed_at is None or self.status in DECIDED
        return counted and bool(self.target) and self.working_days > self.target


async def applications_with_clock(
    session: AsyncSession,
    policies: dict[str, PolicyProfile],
    *,
    calendar: WorkdayCalendar,
    now: datetime | None = None,
    status: str | None = None,
    stage: str | None = None,
    open_only: bool = False,
    limit: int = 200,
) -> list[ClockedApplication]:
    """The applications the overview counts (filtered), oldest first, with their clock."""
    now = now or datetime.now(UTC)
    query = (
        _columns()
        .add_columns(
            col(Application.id),
            col(InsuredPerson.name),
            col(Application.submitted_by),
            col(Application.submitting_hospital_code),
        )
        .join(InsuredPerson, col(InsuredPerson.id) == col(Application.person_id))
        .order_by(col(Application.submitted_at))
        .limit(limit)
    )
    if status is not None:
        query = query.where(col(Application.status) == status)
    if stage is not None:
        query = query.where(col(Application.stage) == stage)
    if open_only:
        query = query.where(col(Application.closed_at).is_(None))
    found = []
    for row in (await session.exec(query)).all():
        region, status_, stage_, submitted_at, closed_at, app_id, name, by, hospital = row
        policy = policies.get(region)
        found.append(
            ClockedApplication(
                app_id,
                region,
                str(status_),
                str(stage_),
                submitted_at,
                closed_at,
                working_days(calendar, submitted_at, closed_at or now, _zone(policy)),
                policy.sla_working_days_max if policy else 0,
                name,
                by,
                hospital,
            )
        )
    return found


async def overview(
    session: AsyncSession,
    policies: dict[str, PolicyProfile],
    *,
    calendar: WorkdayCalendar,
    now: datetime | None = None,
) -> list[RegionOverview]:
    """One overview per region that has applications (or a profile in ``policies``)."""
    now = now or datetime.now(UTC)
    regions: dict[str, RegionOverview] = {}

    def of(region: str) -> RegionOverview:
        if region not in regions:
            policy = policies.get(region)
            regions[region] = RegionOverview(region, policy.sla_working_days_max if policy else 0)
        return regions[region]

    for region in policies:
        of(region)
    rows = (await session.exec(_columns())).all()
    for region, status, stage, submitted_at, closed_at in rows:
        overview = of(region)
        zone = _zone(policies.get(region))
        overview.by_status[str(status)] += 1
        target = overview.sla_working_days_max
        if closed_at is None:
            overview.open_by_stage[str(stage)] += 1
            if target and working_days(calendar, submitted_at, now, zone) > target:
                overview.open_overdue += 1
            continue
        if status in DECIDED:
            days = working_days(calendar, submitted_at, closed_at, zone)
            overview.decision_working_days.append(days)
            overview.decided_late += bool(target) and days > target
        if status == ApplicationStatus.APPROVED:
            overview.approvals_by_month[f"{closed_at.astimezone(zone):%Y-%m}"] += 1
    benefits = (
        await session.exec(  # type: ignore[call-overload]
            sa.select(col(Application.region), col(Benefit.valid_from)).join(
                Application, col(Application.id) == col(Benefit.application_id)
            )
        )
    ).all()
    for region, valid_from in benefits:
        of(region).benefits_by_month[f"{valid_from:%Y-%m}"] += 1
    return [regions[r] for r in sorted(regions)]


def _zone(policy: PolicyProfile | None) -> timezone:
    return timezone(timedelta(hours=policy.timezone_offset_hours if policy else 8))

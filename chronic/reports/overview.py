"""The operators' overview (`chronic report overview`): where the applications stand.

Counts by region and status, open applications by stage, decisions within and beyond the
policy's working-day target, the median working days from submission to decision, and the
approvals and new benefits month by month. Working days are counted on the office's holiday
calendar (:mod:`chronic.workdays`), as the SLA target is.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from chronic.workdays import WorkdayCalendar
from models.domain import ApplicationStatus
from models.policy import PolicyProfile
from models.tables import Application, Benefit

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
    rows = (
        await session.exec(  # type: ignore[call-overload]
            sa.select(
                col(Application.region),
                col(Application.status),
                col(Application.stage),
                col(Application.submitted_at),
                col(Application.closed_at),
            )
        )
    ).all()
    for region, status, stage, submitted_at, closed_at in rows:
        overview = of(region)
        zone = _zone(policies.get(region))
        overview.by_status[str(status)] += 1
        submitted = submitted_at.astimezone(zone).date()
        target = overview.sla_working_days_max
        if closed_at is None:
            overview.open_by_stage[str(stage)] += 1
            if (
                target
                and calendar.working_days_between(submitted, now.astimezone(zone).date()) > target
            ):
                overview.open_overdue += 1
            continue
        if status in DECIDED:
            days = calendar.working_days_between(submitted, closed_at.astimezone(zone).date())
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

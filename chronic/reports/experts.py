"""The monthly statistic of each expert's workload, per hospital (seed 002, 五: 每月统计).

A month is counted in the region's local time. For each expert of the region: offers made to
them, accepted, declined, lapsed (no answer within the accept window), decision lapses,
decisions made (reviews recorded in the month) and the median time from an offer to its answer
(accepted or declined). Experts without any offer in the month are listed with zeros: a
hospital should see who did nothing as well as who did much.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import defaultdict
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models.domain import OfferStatus
from models.tables import Expert, Hospital, Offer, Review

_MONTH = re.compile(r"^(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class ExpertMonth:
    """One expert's line of the month."""

    hospital_code: str
    hospital_name: str
    expert_code: str
    expert_name: str
    status: str
    offers: int
    accepted: int
    declined: int
    lapsed: int
    decision_lapsed: int
    decisions: int
    median_response_minutes: float | None


def month_bounds(month: str, zone: timezone) -> tuple[datetime, datetime]:
    """The UTC instants where ``YYYY-MM`` begins and ends in ``zone``.

    Raises:
        ValueError: ``month`` is not ``YYYY-MM``.
    """
    found = _MONTH.match(month)
    if found is None:
        raise ValueError(f"month {month!r} is not YYYY-MM, e.g. 2026-11")
    year, number = int(found["year"]), int(found["month"])
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


async def expert_month(
    session: AsyncSession, *, region: str, month: str, zone: timezone, hospital: str | None = None
) -> list[ExpertMonth]:
    """Every expert of ``region`` (of ``hospital`` if given), by hospital and code."""
    start, end = month_bounds(month, zone)
    experts = (
        await session.exec(  # type: ignore[call-overload]
            sa.select(Expert, col(Hospital.name))
            .join(Hospital, col(Hospital.code) == col(Expert.hospital_code))
            .where(col(Expert.region) == region)
            .where(col(Expert.hospital_code) == hospital if hospital else sa.true())
            .order_by(col(Expert.hospital_code), col(Expert.code))
        )
    ).all()
    offers = (
        await session.scalars(
            sa.select(Offer).where(col(Offer.offered_at) >= start, col(Offer.offered_at) < end)
        )
    ).all()
    decisions = dict(
        (
            await session.exec(  # type: ignore[call-overload]
                sa.select(col(Review.expert_code), sa.func.count())
                .where(col(Review.decided_at) >= start, col(Review.decided_at) < end)
                .group_by(col(Review.expert_code))
            )
        ).all()
    )
    by_expert: dict[str, list[Offer]] = defaultdict(list)
    for offer in offers:
        by_expert[offer.expert_code].append(offer)
    return [
        _line(expert, hospital_name, by_expert[expert.code], decisions.get(expert.code, 0))
        for expert, hospital_name in experts
    ]


def _line(expert: Expert, hospital_name: str, offers: list[Offer], decisions: int) -> ExpertMonth:
    def count(*statuses: OfferStatus) -> int:
        return sum(o.status in statuses for o in offers)

    # An offer's later history counts too: a completed one was accepted, a decision lapse
    # also. What it ended as is what the offer row says now.
    accepted = (OfferStatus.ACCEPTED, OfferStatus.COMPLETED, OfferStatus.DECISION_LAPSED)
    answered = [
        (o.answered_at - o.offered_at) / timedelta(minutes=1)
        for o in offers
        if o.answered_at is not None and o.status in (*accepted, OfferStatus.DECLINED)
    ]
    return ExpertMonth(
        hospital_code=expert.hospital_code,
        hospital_name=hospital_name,
        expert_code=expert.code,
        expert_name=expert.name,
        status=str(expert.status),
        offers=len(offers),
        accepted=count(*accepted),
        declined=count(OfferStatus.DECLINED),
        lapsed=count(OfferStatus.LAPSED),
        decision_lapsed=count(OfferStatus.DECISION_LAPSED),
        decisions=decisions,
        median_response_minutes=round(statistics.median(answered), 1) if answered else None,
    )


def as_csv(lines: list[ExpertMonth]) -> str:
    """The lines as CSV with a header row (UTF-8 text; spreadsheets open it as is)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f.name for f in fields(ExpertMonth)])
    for line in lines:
        writer.writerow("" if v is None else v for v in astuple(line))
    return out.getvalue()

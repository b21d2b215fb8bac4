"""The office's reports: the monthly expert statistic (seed 002, 五), counted per hospital in the
region's local month, and the operators' overview with its charts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from sqlmodel import col
from typer.testing import CliRunner

from chronic.cli import app
from chronic.db import Database
from chronic.reports.experts import expert_month, month_bounds
from chronic.reports.overview import overview
from chronic.settings import Settings
from chronic.submission import StartDeferred, submit
from chronic.workdays import WorkdayCalendar
from models.domain import ApplicationStatus, OfferStatus, ReviewDecision, ReviewStage
from models.policy import load_policy
from models.tables import Application, Expert, InsuredPerson, Offer, Review
from tests import support

BEIJING = timezone(timedelta(hours=8))


def test_a_month_is_counted_in_local_time() -> None:
    start, end = month_bounds("2026-11", BEIJING)
    assert start == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert end == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert month_bounds("2026-12", BEIJING)[1] == datetime(2026, 12, 31, 16, tzinfo=UTC)
    with pytest.raises(ValueError, match="is not YYYY-MM"):
        month_bounds("2026-13", BEIJING)


async def _two_experts(db: Database) -> tuple[Expert, Expert]:
    async with db.session() as session:
        experts = (
            await session.scalars(
                sa.select(Expert)
                .where(col(Expert.region) == "sanmenxia", col(Expert.hospital_code) == "H02")
                .order_by(col(Expert.code))
                .limit(2)
            )
        ).all()
    assert len(experts) == 2
    return experts[0], experts[1]


async def _application(db: Database, tmp_path: Path) -> str:
    with pytest.raises(StartDeferred) as deferred:
        await submit(
            support.form(support.WANG, "DM"),
            client=None,
            db=db,
            settings=Settings(state_dir=tmp_path),
        )
    return deferred.value.application_id


async def test_each_experts_month_by_hospital(
    seeded_database: Database, tmp_path: Path, configured: Callable[..., None]
) -> None:
    first, second = await _two_experts(seeded_database)
    app_id = await _application(seeded_database, tmp_path)
    local = datetime(2026, 11, 1, 1, 0, tzinfo=BEIJING)  # 2026-10-31 17:00 UTC: November here
    offers = [
        # (expert, status, minutes to answer or None)
        (first, OfferStatus.COMPLETED, 30),
        (first, OfferStatus.DECLINED, 90),
        (first, OfferStatus.LAPSED, None),
        (first, OfferStatus.DECISION_LAPSED, 60),
        (second, OfferStatus.WITHDRAWN, None),
    ]
    async with seeded_database.session() as session:
        for seq, (expert, status, minutes) in enumerate(offers, 1):
            offered = local + timedelta(days=seq)
            offer = Offer(
                application_id=app_id,
                seq=seq,
                stage=ReviewStage.INITIAL_REVIEW,
                expert_code=expert.code,
                pool_size=3,
                status=status,
                offered_at=offered,
                accept_deadline=offered + timedelta(hours=24),
                answered_at=offered + timedelta(minutes=minutes) if minutes else None,
            )
            session.add(offer)
            await session.flush()
            if status == OfferStatus.COMPLETED:
                assert offer.id is not None
                session.add(
                    Review(
                        application_id=app_id,
                        offer_id=offer.id,
                        stage=ReviewStage.INITIAL_REVIEW,
                        expert_code=expert.code,
                        decision=ReviewDecision.APPROVE,
                        decided_at=offered + timedelta(hours=2),
                    )
                )
        # The month before, in local time (31 October 23:00 in Beijing): not counted.
        early = datetime(2026, 10, 31, 23, 0, tzinfo=BEIJING)
        session.add(
            Offer(
                application_id=app_id,
                seq=len(offers) + 1,
                stage=ReviewStage.INITIAL_REVIEW,
                expert_code=second.code,
                pool_size=3,
                status=OfferStatus.DECLINED,
                offered_at=early,
                accept_deadline=early + timedelta(hours=24),
                answered_at=early + timedelta(minutes=5),
            )
        )

    async with seeded_database.session() as session:
        lines = await expert_month(session, region="sanmenxia", month="2026-11", zone=BEIJING)
    by_code = {line.expert_code: line for line in lines}
    one, two = by_code[first.code], by_code[second.code]
    assert (one.offers, one.accepted, one.declined, one.lapsed, one.decision_lapsed) == (
        4,
        2,
        1,
        1,
        1,
    )
    assert one.decisions == 1
    assert one.median_response_minutes == 60  # of 30, 90 and 60
    assert (two.offers, two.accepted, two.declined, two.median_response_minutes) == (1, 0, 0, None)
    # Every expert of the region is listed, the idle ones with zeros.
    assert len(lines) > 2 and all(line.hospital_code for line in lines)
    assert any(line.offers == 0 for line in lines)

    configured(temporal="127.0.0.1:1", database_url=seeded_database.url)
    csv_path = tmp_path / "h02.csv"
    args = ["report", "experts", "--month", "2026-11", "-H", "H02", "--csv", str(csv_path)]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)  # the CLI runs its own loop
    assert result.exit_code == 0, result.output
    assert "H02" in result.output and first.code in result.output
    rows = csv_path.read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("hospital_code,hospital_name,expert_code")
    assert any(
        row.startswith("H02,") and f",{first.code}," in row and ",4,2,1,1,1,1,60.0" in row
        for row in rows
    )

    bad = CliRunner().invoke(app, ["report", "experts", "--month", "11/2026"])
    assert bad.exit_code == 2 and "is not YYYY-MM" in bad.output


async def test_the_overview_counts_statuses_stages_working_days_and_breaches(
    seeded_database: Database, tmp_path: Path, configured: Callable[..., None]
) -> None:
    async with seeded_database.session() as session:
        person = await session.scalar(
            sa.select(col(InsuredPerson.id)).where(col(InsuredPerson.id_number) == support.WANG)
        )
    assert person is not None
    monday = datetime(2026, 11, 2, 9, 0, tzinfo=BEIJING)  # a week without holidays
    now = datetime(2026, 11, 30, 9, 0, tzinfo=BEIJING)
    rows = [
        # (disease, status, stage, submitted, closed)
        (
            "DM",
            ApplicationStatus.APPROVED,
            ReviewStage.RE_REVIEW,
            monday,
            monday + timedelta(days=4),
        ),
        (
            "DM",
            ApplicationStatus.REJECTED,
            ReviewStage.RE_REVIEW,
            monday,
            monday + timedelta(days=14),
        ),
        ("DM", ApplicationStatus.REFUSED, ReviewStage.INTAKE, monday, monday),
        ("HTN", ApplicationStatus.IN_REVIEW, ReviewStage.INITIAL_REVIEW, monday, None),
        ("CHD", ApplicationStatus.INTAKE, ReviewStage.INTAKE, now - timedelta(days=1), None),
    ]
    async with seeded_database.session() as session:
        for n, (disease, status, stage, submitted, closed) in enumerate(rows):
            session.add(
                Application(
                    id=f"APP-20261102-OVR{n:03d}",
                    region="sanmenxia",
                    person_id=person,
                    disease_code=disease,
                    year=2026,
                    status=status,
                    stage=stage,
                    mobile="+8613800000000",
                    case_number="BA1",
                    diagnosing_hospital_code="H01",
                    designated_hospital_code="H01",
                    submitted_at=submitted,
                    closed_at=closed,
                )
            )
    policies = {"sanmenxia": load_policy("sanmenxia"), "wuhan": load_policy("wuhan")}
    async with seeded_database.session() as session:
        regions = await overview(session, policies, calendar=WorkdayCalendar(), now=now)
    by_region = {r.region: r for r in regions}
    sanmenxia = by_region["sanmenxia"]
    assert sanmenxia.by_status == {
        "approved": 1,
        "rejected": 1,
        "refused": 1,
        "in_review": 1,
        "intake": 1,
    }
    assert sanmenxia.open_by_stage == {"initial_review": 1, "intake": 1}
    assert sorted(sanmenxia.decision_working_days) == [4, 10]  # Mon→Fri; Mon→Mon two weeks on
    assert sanmenxia.median_working_days == 7
    assert (sanmenxia.decided_late, sanmenxia.open_overdue) == (1, 1)  # target 8 working days
    assert sanmenxia.approvals_by_month == {"2026-11": 1}
    assert by_region["wuhan"].by_status == {}  # a region without applications is listed empty

    configured(temporal="127.0.0.1:1", database_url=seeded_database.url)
    charts = tmp_path / "charts"
    args = ["report", "overview", "--charts", str(charts)]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    assert "sanmenxia" in result.output and "Approvals per month" in result.output
    for name in ("status.png", "approvals.png"):
        with Image.open(charts / name) as image:
            assert image.format == "PNG" and image.size == (800, 450)
            assert len(image.getcolors(maxcolors=100_000) or []) > 10  # drawn, not blank

"""Working days across the end of chinese-calendar's years (issue 8, item 11).

chinese-calendar covers up to 2026 in the locked release; 2027 is counted from the office's
holidays file when it lists the year, otherwise by rule (python-holidays, CN) and provisional.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import chinese_calendar
import pytest
import sqlalchemy as sa
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.intake import IntakeActivities
from chronic.db import Database
from chronic.workdays import (
    HOLIDAYS_FILE_ENV,
    WorkdayCalendar,
    add_working_days,
    load_holidays_file,
    shipped_holidays_file,
)
from models.messages import SlaDue, SlaRequest
from models.tables import Application
from tests import support

BEIJING = timezone(timedelta(hours=8))
APPLICATION_ID = "APP-20261228-SLA001"


def at(day: date, hour: int = 9, minute: int = 30) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BEIJING)


@pytest.fixture(autouse=True)
def _chinese_calendar_ends_in_2026() -> None:
    """These tests are about the years after chinese-calendar's last one (2026 when written)."""
    chinese_calendar.is_workday(date(2026, 12, 31))
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 1, 1))


@pytest.fixture
def holidays_file(tmp_path: Path) -> Path:
    """An office holidays file that lists no year (the shipped state)."""
    path = tmp_path / "holidays.toml"
    path.write_text("# no year published yet\n", encoding="utf-8")
    return path


@pytest.fixture
def by_rule(holidays_file: Path) -> WorkdayCalendar:
    """A calendar of its own (warnings not yet given) with nothing in the holidays file."""
    return WorkdayCalendar(holidays_file)


def test_new_year_2027_is_a_holiday_by_rule_and_the_result_is_provisional(
    by_rule: WorkdayCalendar,
) -> None:
    # Mon 28 Dec 2026: 29, 30, 31 Dec (chinese-calendar); Fri 1 Jan 2027 off by rule;
    # 4–8 Jan are working days 4–8.
    due = add_working_days(at(date(2026, 12, 28)), 8, calendar=by_rule)

    assert due.due_at == at(date(2027, 1, 8))
    assert due.provisional
    assert due.provisional_years == (2027,)
    assert by_rule.is_workday(date(2027, 1, 1)) == (False, True)
    assert by_rule.is_workday(date(2026, 12, 31)) == (True, False)


def test_spring_festival_2027_by_rule_pushes_the_target_past_the_holiday(
    by_rule: WorkdayCalendar,
) -> None:
    # Spring Festival is Sat 6 Feb 2027: the eve (Fri 5 Feb) to Wed 10 Feb are off by rule
    # (the festival days on the weekend made up on Tue 9 and Wed 10).
    for day in range(5, 11):
        assert by_rule.is_workday(date(2027, 2, day)) == (False, True), f"2027-02-{day:02}"

    # Wed 3 Feb + 5: Thu 4 Feb, then Thu 11, Fri 12, Mon 15, Tue 16 Feb.
    due = add_working_days(at(date(2027, 2, 3)), 5, calendar=by_rule)

    assert due.due_at == at(date(2027, 2, 16))
    assert due.provisional
    assert due.provisional_years == (2027,)


def test_a_year_chinese_calendar_covers_is_official_with_its_make_up_workday(
    by_rule: WorkdayCalendar,
) -> None:
    # Mon 28 Sep 2026 + 5: 29, 30 Sep; National Day 1–7 Oct off; Thu 8, Fri 9 Oct and the
    # make-up workday Sat 10 Oct.
    due = add_working_days(at(date(2026, 9, 28)), 5, calendar=by_rule)

    assert due.due_at == at(date(2026, 10, 10))
    assert not due.provisional
    assert due.provisional_years == ()


def test_a_year_in_the_holidays_file_overrides_the_rule_and_is_not_provisional(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A made-up schedule (test data, not the State Council's): 1 Jan off, Sat 2 Jan worked.
    path = tmp_path / "office.toml"
    path.write_text(
        '[2027]\nnotice = "test schedule"\nholidays = [2027-01-01]\nworkdays = [2027-01-02]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv(HOLIDAYS_FILE_ENV, str(path))
    calendar = WorkdayCalendar()  # finds the file through CHRONIC_HOLIDAYS_FILE

    # 29, 30, 31 Dec; Sat 2 Jan (make-up); Mon 4 – Thu 7 Jan.
    due = add_working_days(at(date(2026, 12, 28)), 8, calendar=calendar)

    assert calendar.holidays_file == path
    assert due.due_at == at(date(2027, 1, 7))
    assert not due.provisional
    assert due.provisional_years == ()
    assert calendar.is_workday(date(2027, 2, 8)) == (True, False)  # the file says nothing


def test_the_warning_is_logged_once_per_year_and_says_what_to_do(
    by_rule: WorkdayCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="chronic.workdays"):
        first = by_rule.add_working_days(at(date(2026, 12, 28)), 8)
        second = by_rule.add_working_days(at(date(2027, 2, 3)), 5)

    assert first.provisional and second.provisional
    warnings = [r for r in caplog.records if r.name == "chronic.workdays"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "2027" in message
    assert "add a [2027] table to the holidays file" in message
    assert "upgrade chinese-calendar" in message


def test_the_shipped_holidays_file_loads_and_bad_entries_are_refused(tmp_path: Path) -> None:
    shipped = load_holidays_file(shipped_holidays_file())
    assert all(year >= 2027 for year in shipped)  # only years after chinese-calendar's

    bad = tmp_path / "bad.toml"
    bad.write_text("[2027]\nworkdays = [2027-01-04]\n", encoding="utf-8")  # a Monday
    with pytest.raises(ValueError, match="Saturday or Sunday"):
        WorkdayCalendar(bad)
    bad.write_text("[2027]\nholidays = [2026-12-31]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="dates outside 2027"):
        WorkdayCalendar(bad)
    bad.write_text("[next]\nholidays = []\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a year table"):
        WorkdayCalendar(bad)


async def _insert_application(db: Database) -> None:
    async with db.session() as session:
        person_id = await session.scalar(
            sa.text("select id from insured_person where id_number = :n"), {"n": support.WANG}
        )
    await support.add_application(
        db,
        mobile="13803981234",
        application_id=APPLICATION_ID,
        person_id=person_id,
        disease_code="DM",
        status="intake",
        stage="intake",
        submitted_at=datetime(2026, 12, 28, 1, 30, tzinfo=UTC),
        designated_hospital="H05",
    )


async def _provisional_mark(db: Database) -> bool:
    async with db.session() as session:
        application = await session.get(Application, APPLICATION_ID)
        assert application is not None
        return application.sla_provisional


async def test_the_activity_returns_sla_due_and_marks_the_application(
    seeded_database: Database, by_rule: WorkdayCalendar
) -> None:
    await _insert_application(seeded_database)
    intake = IntakeActivities(seeded_database, calendar=by_rule)
    env = ActivityEnvironment()
    request = SlaRequest(
        start=at(date(2026, 12, 28)), working_days=8, application_id=APPLICATION_ID
    )

    first = await env.run(intake.sla_due_at, request)
    again = await env.run(intake.sla_due_at, request)  # a retry: same answer, same mark

    expected = SlaDue(due_at=at(date(2027, 1, 8)), provisional=True, provisional_years=(2027,))
    assert first == again == expected
    assert await _provisional_mark(seeded_database)

    # Counted again within 2026 (official): the mark follows the answer.
    official = await env.run(
        intake.sla_due_at,
        SlaRequest(start=at(date(2026, 9, 28)), working_days=5, application_id=APPLICATION_ID),
    )
    assert official == SlaDue(due_at=at(date(2026, 10, 10)), provisional=False)
    assert not await _provisional_mark(seeded_database)

    # Without an application ID nothing is written.
    await env.run(intake.sla_due_at, SlaRequest(start=at(date(2027, 2, 3)), working_days=5))
    assert not await _provisional_mark(seeded_database)


async def test_the_activity_refuses_an_unknown_application(
    fresh_database: Database, by_rule: WorkdayCalendar
) -> None:
    intake = IntakeActivities(fresh_database, calendar=by_rule)
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            intake.sla_due_at,
            SlaRequest(start=at(date(2026, 12, 28)), working_days=8, application_id="APP-NONE"),
        )
    assert raised.value.non_retryable

"""Working days on the official Chinese holiday calendar, also beyond the published years.

The State Council publishes each year's holidays and make-up workdays (调休上班) late in the
year before, and ``chinese-calendar`` ships them some time later. A due date counted across a
year boundary must not wait for either, so each day is looked up in this order:

1. ``chinese-calendar``, for the years it covers (official);
2. the office's holidays file (``models/policies/holidays/official.toml``, or the file named by
   ``CHRONIC_HOLIDAYS_FILE``), where the office enters a year as soon as the notice is out
   (official);
3. the statutory holidays computed by rule by ``holidays`` (python-holidays, country CN: the
   lunar festivals included, a holiday on a weekend made up on the next workday), weekends off
   and no make-up workdays known — **provisional**.

A result that counted any day of a provisional year says so and names the years; a warning is
logged once per process and year. Nothing here touches Temporal or the database.
"""

from __future__ import annotations

import logging
import os
import threading
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import chinese_calendar
import holidays
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

HOLIDAYS_FILE_ENV = "CHRONIC_HOLIDAYS_FILE"
"""Environment variable naming the office's holidays file (instead of the shipped one)."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueDate:
    """The end of a working-day count and how firm it is."""

    due_at: datetime
    provisional: bool
    provisional_years: tuple[int, ...] = ()


class OfficialYear(BaseModel):
    """One year of the holidays file: the State Council's schedule as published."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    year: int
    notice: str = Field(default="", description="The notice it comes from (国办发明电…).")
    holidays: frozenset[date] = Field(default=frozenset(), description="Days off (放假).")
    workdays: frozenset[date] = Field(
        default=frozenset(), description="Make-up workdays (调休上班): weekend days worked."
    )

    @model_validator(mode="after")
    def _check(self) -> OfficialYear:
        stray = sorted(d for d in self.holidays | self.workdays if d.year != self.year)
        if stray:
            raise ValueError(
                f"dates outside {self.year}: {', '.join(map(str, stray))} (list each day "
                "under the table of its own year)"
            )
        both = sorted(self.holidays & self.workdays)
        if both:
            raise ValueError(f"listed as holiday and as workday: {', '.join(map(str, both))}")
        weekdays = sorted(d for d in self.workdays if d.weekday() < 5)
        if weekdays:
            raise ValueError(
                f"make-up workdays must be a Saturday or Sunday: {', '.join(map(str, weekdays))}"
            )
        return self

    def is_workday(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day not in self.holidays and day.weekday() < 5


def shipped_holidays_file() -> Traversable:
    """The holidays file that ships with the product."""
    return resources.files("models.policies").joinpath("holidays").joinpath("official.toml")


def load_holidays_file(path: Path | Traversable) -> dict[int, OfficialYear]:
    """Read a holidays file (format at the top of ``official.toml``); a bad entry raises."""
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"holidays file {path}: {error}") from error
    years: dict[int, OfficialYear] = {}
    for key, table in tables.items():
        if not (key.isdigit() and len(key) == 4) or not isinstance(table, dict):
            raise ValueError(f"holidays file {path}: [{key}] is not a year table like [2027]")
        try:
            years[int(key)] = OfficialYear.model_validate({**table, "year": int(key)})
        except ValidationError as error:
            raise ValueError(f"holidays file {path}, [{key}]: {error}") from error
    return years


class WorkdayCalendar:
    """Decides working days year by year from the three sources, warning once per year."""

    def __init__(self, holidays_file: Path | Traversable | None = None) -> None:
        if holidays_file is None:
            named = os.environ.get(HOLIDAYS_FILE_ENV)
            holidays_file = Path(named) if named else shipped_holidays_file()
        self.holidays_file = holidays_file
        self.official = load_holidays_file(holidays_file)
        self._rule_based: dict[int, frozenset[date]] = {}
        self._warned: set[int] = set()
        self._lock = threading.Lock()

    def is_workday(self, day: date) -> tuple[bool, bool]:
        """Whether ``day`` is a working day, and whether that answer is provisional."""
        try:
            return bool(chinese_calendar.is_workday(day)), False
        except NotImplementedError:
            pass  # a year chinese-calendar does not cover (yet)
        official = self.official.get(day.year)
        if official is not None:
            return official.is_workday(day), False
        return day.weekday() < 5 and day not in self._statutory(day.year), True

    def add_working_days(self, start: datetime, working_days: int) -> DueDate:
        """``working_days`` working days after ``start``'s date, at ``start``'s time of day."""
        if working_days < 0:
            raise ValueError(f"working_days must not be negative (got {working_days})")
        day = start.date()
        remaining = working_days
        provisional_years: set[int] = set()
        while remaining > 0:
            day += timedelta(days=1)
            workday, provisional = self.is_workday(day)
            if provisional:
                provisional_years.add(day.year)
            if workday:
                remaining -= 1
        years = tuple(sorted(provisional_years))
        for year in years:
            self._warn_once(year)
        return DueDate(
            due_at=datetime.combine(day, start.timetz()),
            provisional=bool(years),
            provisional_years=years,
        )

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when ``end`` is not
        later): how the office counts the days a case took, as ``add_working_days`` counts
        the days it may take."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_workday(day)[0]
        return count

    def _statutory(self, year: int) -> frozenset[date]:
        with self._lock:
            if year not in self._rule_based:
                computed = holidays.country_holidays("CN", years=year)
                self._rule_based[year] = frozenset(d for d in computed if d.year == year)
            return self._rule_based[year]

    def _warn_once(self, year: int) -> None:
        with self._lock:
            if year in self._warned:
                return
            self._warned.add(year)
        _log.warning(
            "no official holiday calendar for %d: counting working days with the statutory "
            "holidays by rule, weekends off and no make-up workdays; results are marked "
            "provisional. When the State Council publishes %d's schedule, add a [%d] table to "
            "the holidays file (%s) or upgrade chinese-calendar to a release covering %d.",
            year,
            year,
            year,
            self.holidays_file,
            year,
        )


@cache
def default_calendar() -> WorkdayCalendar:
    """The calendar of this process (the holidays file is read once, warnings given once)."""
    return WorkdayCalendar()


def add_working_days(
    start: datetime, working_days: int, *, calendar: WorkdayCalendar | None = None
) -> DueDate:
    """Count ``working_days`` working days from ``start`` on ``calendar`` (default: the process's).

    Returns the due datetime (the date reached, at ``start``'s time of day and zone), whether
    any day counted lies in a year without official data, and which years those are.
    """
    return (calendar or default_calendar()).add_working_days(start, working_days)

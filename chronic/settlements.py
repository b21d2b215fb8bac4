"""Settlement months from the settlement system, for the renewal check (seed 002 rule 9).

The office exports, per person, disease and month, whether the outpatient chronic benefit was
settled normally, and imports the file with `chronic settlement import FILE.csv`:

    id_number,disease_code,month,normal
    411221199001052066,DM,2026-10,1

``normal`` is 1/0 (also true/false, 正常/异常). The whole file is checked first: every problem
is listed with its line, and nothing is written unless there is none. A month imported again
takes the new value. ID numbers are never echoed in full.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from activities import audit
from models.application import mask_id_number
from models.tables import InsuredPerson, Settlement

COLUMNS = ("id_number", "disease_code", "month", "normal")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_NORMAL = {"1": True, "true": True, "正常": True, "0": False, "false": False, "异常": False}


class SettlementFileError(Exception):
    """The file cannot be imported; ``problems`` are ``line N: what is wrong`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class _Line:
    id_number: str
    disease_code: str
    month: date
    normal: bool


@dataclass(frozen=True)
class Imported:
    months: int
    persons: int


def parse(text: str) -> list[_Line]:
    """The file's lines, or :class:`SettlementFileError` with every problem."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    if reader.fieldnames is None or tuple(f.strip() for f in reader.fieldnames) != COLUMNS:
        raise SettlementFileError(
            [f"line 1: the header must be {','.join(COLUMNS)} (got {reader.fieldnames})"]
        )
    lines: list[_Line] = []
    problems: list[str] = []
    for number, row in enumerate(reader, start=2):
        values = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        id_number = values["id_number"].upper()
        month = _MONTH.match(values["month"])
        normal = _NORMAL.get(values["normal"].lower())
        wrong = []
        if not re.fullmatch(r"\d{17}[\dX]", id_number):
            wrong.append("id_number is not an 18-character resident ID number")
        if not re.fullmatch(r"[A-Z0-9-]{2,16}", values["disease_code"]):
            wrong.append(f"disease_code {values['disease_code']!r} is not a catalogue code")
        if month is None:
            wrong.append(f"month {values['month']!r} is not YYYY-MM")
        if normal is None:
            wrong.append(f"normal {values['normal']!r} is not 1/0 (true/false, 正常/异常)")
        if wrong:
            problems += [f"line {number}: {w}" for w in wrong]
            continue
        assert month is not None and normal is not None
        lines.append(
            _Line(
                id_number,
                values["disease_code"],
                date(int(month[1]), int(month[2]), 1),
                normal,
            )
        )
    if problems:
        raise SettlementFileError(problems)
    return lines


async def import_lines(session: AsyncSession, lines: list[_Line], *, actor: str) -> Imported:
    """Write the months (a month imported again takes the new value), all or nothing.

    Raises:
        SettlementFileError: a person not on the register (the line, the number masked).
    """
    numbers = {line.id_number for line in lines}
    persons = dict(
        (
            await session.execute(
                sa.select(col(InsuredPerson.id_number), col(InsuredPerson.id)).where(
                    col(InsuredPerson.id_number).in_(numbers)
                )
            )
        ).all()
    )
    missing = [
        f"line {n}: no insured person {mask_id_number(line.id_number)} on the register"
        for n, line in enumerate(lines, start=2)
        if line.id_number not in persons
    ]
    if missing:
        raise SettlementFileError(missing)
    now = datetime.now(UTC)
    for line in lines:
        await session.exec(
            insert(Settlement)
            .values(
                person_id=persons[line.id_number],
                disease_code=line.disease_code,
                month=line.month,
                normal=line.normal,
                imported_at=now,
            )
            .on_conflict_do_update(
                index_elements=["person_id", "disease_code", "month"],
                set_={"normal": line.normal, "imported_at": now},
            )
        )
    imported = Imported(months=len(lines), persons=len(numbers))
    await audit.record(
        session,
        step_key=f"settlements:{now.isoformat()}",
        application_id=None,
        actor=actor,
        action="settlements_imported",
        at=now,
        months=imported.months,
        persons=imported.persons,
    )
    return imported

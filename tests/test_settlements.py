"""`chronic settlement import`: the months the renewal check counts, all or nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col
from typer.testing import CliRunner, Result

from chronic.cli import app
from chronic.db import Database
from models.tables import AuditEvent, Settlement
from tests import support


async def _cli(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def _months(db: Database) -> list[tuple[date, bool]]:
    async with db.session() as session:
        rows = await session.execute(
            sa.select(col(Settlement.month), col(Settlement.normal)).order_by(col(Settlement.month))
        )
        return [(m, n) for m, n in rows.all()]


async def test_a_file_with_mistakes_lists_each_with_its_line_and_imports_nothing(
    seeded_database: Database, tmp_path: Path, configured: Callable[..., None]
) -> None:
    configured(temporal="127.0.0.1:1", database_url=seeded_database.url)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id_number,disease_code,month,normal\n"
        f"{support.WANG},DM,2026-10,1\n"
        f"{support.WANG},DM,2026-13,yes\n"
        "411221199001052067x,DM,2026-09,0\n",
        encoding="utf-8",
    )
    result = await _cli("settlement", "import", str(bad))
    assert result.exit_code == 1
    assert "line 3: month '2026-13' is not YYYY-MM" in result.stderr
    assert "line 3: normal 'yes' is not 1/0" in result.stderr
    assert "line 4: id_number is not an 18-character resident ID number" in result.stderr
    assert await _months(seeded_database) == []

    stranger = tmp_path / "stranger.csv"
    stranger.write_text(
        "id_number,disease_code,month,normal\n"
        f"{support.WANG},DM,2026-10,1\n"
        "110101199003074514,DM,2026-10,1\n",
        encoding="utf-8",
    )
    refused = await _cli("settlement", "import", str(stranger))
    assert refused.exit_code == 1 and "line 3: no insured person 1101" in refused.stderr
    assert "110101199003074514" not in refused.output  # the number is masked
    assert await _months(seeded_database) == []


async def test_months_are_imported_and_a_month_again_takes_the_new_value(
    seeded_database: Database, tmp_path: Path, configured: Callable[..., None]
) -> None:
    configured(temporal="127.0.0.1:1", database_url=seeded_database.url)
    good = tmp_path / "good.csv"
    good.write_text(
        "\ufeffid_number,disease_code,month,normal\n"
        f"{support.WANG},DM,2026-09,正常\n"
        f"{support.WANG},DM,2026-10,0\n"
        f"{support.LI},DM,2026-10,true\n",
        encoding="utf-8",
    )
    first = await _cli("settlement", "import", str(good))
    assert first.exit_code == 0, first.output
    assert "imported 3 settlement months of 2 persons" in first.stdout
    again = tmp_path / "again.csv"
    again.write_text(
        f"id_number,disease_code,month,normal\n{support.WANG},DM,2026-10,1\n", encoding="utf-8"
    )
    assert (await _cli("settlement", "import", str(again))).exit_code == 0
    months = await _months(seeded_database)
    assert len(months) == 3
    assert (date(2026, 10, 1), True) in months and (date(2026, 9, 1), True) in months
    assert "settlements_imported" in [a for a in (await _audit(seeded_database))]


async def _audit(db: Database) -> list[str]:

    async with db.session() as session:
        return list(await session.scalars(sa.select(col(AuditEvent.action))))

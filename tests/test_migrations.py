"""The schema comes from the Alembic migrations, and they agree with models/tables.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

import models.tables  # noqa: F401 - registers the tables on SQLModel.metadata
from chronic import migrate
from chronic.db import Database
from tests.fixtures import free_port

MODEL_TABLES = set(SQLModel.metadata.tables)


async def _tables(url: str) -> set[str]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            return set(rows.scalars())
    finally:
        await db.dispose()


async def test_upgrade_creates_every_table_of_the_models(empty_database_url: str) -> None:
    assert await migrate.current(empty_database_url) is None

    await migrate.upgrade(empty_database_url)

    assert await _tables(empty_database_url) == MODEL_TABLES | {"alembic_version"}
    assert await migrate.current(empty_database_url) == migrate.head()


async def test_models_and_migrations_agree(fresh_database: Database) -> None:
    def differences(conn: sa.Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))

    async with fresh_database.engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_downgrade_to_base_removes_everything_and_upgrade_works_again(
    fresh_database: Database,
) -> None:
    url = fresh_database.url

    await migrate.downgrade(url, "base")

    assert await _tables(url) == {"alembic_version"}  # Alembic's bookkeeping, now empty
    assert await migrate.current(url) is None
    async with fresh_database.engine.connect() as conn:
        leftovers = await conn.execute(
            sa.text(
                "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('S', 'i') "
                "AND relname NOT LIKE 'alembic_version%'"
            )
        )
        assert leftovers.scalars().all() == []  # no sequence or index survives

    await migrate.upgrade(url)
    assert await _tables(url) == MODEL_TABLES | {"alembic_version"}


async def _hospital(conn: AsyncConnection, code: str = "H01") -> None:
    await conn.execute(
        sa.text(
            "INSERT INTO hospital (code, name, level, grade, public, region) "
            "VALUES (:code, '三门峡市中心医院', 3, 'A', true, 'sanmenxia')"
        ),
        {"code": code},
    )


async def test_upgrading_a_database_at_head_changes_nothing(fresh_database: Database) -> None:
    async with fresh_database.engine.begin() as conn:
        await _hospital(conn)

    await migrate.upgrade(fresh_database.url)

    async with fresh_database.engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT code FROM hospital"))).scalars().all() == ["H01"]
    assert await migrate.current(fresh_database.url) == migrate.head()


# Each process imports everything first, says so, and starts upgrading when told: both then
# really migrate at the same moment instead of one finishing before the other has imported.
_UPGRADE_ON_SIGNAL = """
import asyncio, sys
from chronic.migrate import upgrade
print("ready", flush=True)
sys.stdin.readline()
asyncio.run(upgrade(sys.argv[1]))
"""


async def test_two_processes_upgrading_at_once_both_succeed(empty_database_url: str) -> None:
    runs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _UPGRADE_ON_SIGNAL,
            empty_database_url,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.stdout is not None
        assert await asyncio.wait_for(run.stdout.readline(), timeout=60) == b"ready\n"
    results = await asyncio.gather(*(run.communicate(b"go\n") for run in runs))

    assert [run.returncode for run in runs] == [0, 0], [err.decode() for _, err in results]
    assert await migrate.current(empty_database_url) == migrate.head()
    assert await _tables(empty_database_url) == MODEL_TABLES | {"alembic_version"}


async def test_one_open_application_per_person_and_disease(fresh_database: Database) -> None:
    insert = sa.text(
        "INSERT INTO application (id, region, person_id, disease_code, year, status, stage, "
        "mobile, case_number, diagnosing_hospital_code, designated_hospital_code, "
        "submitted_by, submitted_at, closed_at) VALUES (:id, 'sanmenxia', :person, :disease, "
        "2026, 'submitted', 'intake', '+8613803981234', 'BA-1', 'H01', 'H01', 'applicant', "
        ":now, :closed)"
    )
    now = datetime.now(UTC)
    async with fresh_database.engine.begin() as conn:
        await _hospital(conn)
        person = (
            await conn.execute(
                sa.text(
                    "INSERT INTO insured_person (id_number, name, mobile, insurance_type, "
                    "insurance_status, region) VALUES ('411221199001052066', '王秀兰', "
                    "'+8613803981234', 'employee', 'normal', 'sanmenxia') RETURNING id"
                )
            )
        ).scalar_one()
        # A closed application (say, rejected) does not block a new one.
        await conn.execute(
            insert, {"id": "A-1", "person": person, "disease": "DM", "now": now, "closed": now}
        )
        await conn.execute(
            insert, {"id": "A-2", "person": person, "disease": "DM", "now": now, "closed": None}
        )
        # Another disease of the same person is independent.
        await conn.execute(
            insert, {"id": "A-3", "person": person, "disease": "CHD", "now": now, "closed": None}
        )

    with pytest.raises(sa.exc.IntegrityError, match="uq_application_open_per_person_disease"):
        async with fresh_database.engine.begin() as conn:
            await conn.execute(
                insert,
                {"id": "A-4", "person": person, "disease": "DM", "now": now, "closed": None},
            )


# --- the command line ---------------------------------------------------------------------


def chronic_db(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """Run ``chronic db ARGS`` in a process of its own, as an operator would."""
    return subprocess.run(
        [sys.executable, "-c", "from chronic.cli.db import app; app()", *args],
        env={**os.environ, "DATABASE_URL": database_url, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _with_password(url: str, password: str) -> str:
    # The test server trusts every login, so any password works — and must never be printed.
    return url.replace("postgres@", f"postgres:{password}@", 1)


def test_cli_upgrades_and_reports_the_revision(empty_database_url: str) -> None:
    url = _with_password(empty_database_url, "s3cret")
    head = migrate.head()
    assert head is not None

    before = chronic_db("current", database_url=url)
    upgraded = chronic_db("upgrade", database_url=url)
    again = chronic_db("upgrade", database_url=url)
    after = chronic_db("current", database_url=url)

    for run in (before, upgraded, again, after):
        assert run.returncode == 0, run.stderr
        assert len(run.stdout.strip().splitlines()) == 1
        assert "s3cret" not in run.stdout + run.stderr
    assert "base (no schema)" in before.stdout and "chronic db upgrade" in before.stdout
    assert "upgraded postgresql+asyncpg://postgres:***@" in upgraded.stdout
    assert f"to {head} (head)" in upgraded.stdout
    assert "already at" in again.stdout
    assert f"is at {head} (head)" in after.stdout


def test_cli_downgrades_one_step_with_minus_one(fresh_database: Database) -> None:
    run = chronic_db("downgrade", "-1", database_url=fresh_database.url)

    head = migrate.head()
    assert head is not None
    below = ScriptDirectory(str(migrate._SCRIPT_LOCATION)).get_revision(head).down_revision
    assert run.returncode == 0, run.stderr
    assert "downgraded" in run.stdout and f"from {head} (head) to {below}" in run.stdout


def test_cli_says_in_one_line_that_postgres_is_unreachable() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+asyncpg://postgres:s3cret@127.0.0.1:{port}/chronic"

    run = chronic_db("current", database_url=url)

    assert run.returncode == 1
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"cannot reach PostgreSQL at 127.0.0.1:{port}: connection refused")
    assert "Traceback" not in run.stderr and "s3cret" not in run.stderr

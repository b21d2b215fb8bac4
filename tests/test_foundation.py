"""The embedded stack's parts work on a machine with only the project's own dependencies."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from chronic.embedded.postgres import EmbeddedPostgres
from chronic.embedded.temporal import DevServer
from chronic.temporal_client import connect_options
from models.policy import load_policy


async def test_embedded_postgres_creates_a_database_once(
    embedded_postgres: EmbeddedPostgres,
) -> None:
    assert await embedded_postgres.ensure_database("chronic_test") is True
    assert await embedded_postgres.ensure_database("chronic_test") is False
    conn = await asyncpg.connect(embedded_postgres.admin_dsn("chronic_test"))
    try:
        assert await conn.fetchval("SELECT current_database()") == "chronic_test"
    finally:
        await conn.close()


def test_sanmenxia_policy_holds_the_seed_numbers() -> None:
    policy = load_policy("sanmenxia")
    assert policy.accept_window == timedelta(hours=24)
    assert policy.applications_per_disease_per_year == 3
    assert policy.strikes_to_disqualify == 3
    assert policy.designated_hospital_changes_per_year == 2
    assert policy.audit_sample_rate == pytest.approx(0.10)
    cancer = policy.disease("CA")
    assert cancer is not None and cancer.instant_track


def test_unknown_region_names_the_available_ones() -> None:
    with pytest.raises(LookupError, match="sanmenxia"):
        load_policy("atlantis")


def test_dev_server_registers_every_search_attribute(tmp_path) -> None:
    argv = DevServer(tmp_path / "temporal.db").argv()
    assert "--db-filename" in argv
    assert "ChronicStatus=Keyword" in argv and "SlaDueAt=Datetime" in argv


def test_temporal_address_comes_from_envconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.example:7233")
    assert connect_options()["target_host"] == "temporal.example:7233"

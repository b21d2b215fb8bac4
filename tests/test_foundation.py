"""The embedded stack's parts work on a machine with only the project's own dependencies."""

from __future__ import annotations

import socket
import urllib.request
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from chronic.embedded.postgres import EmbeddedPostgres
from chronic.embedded.temporal import DevServer
from chronic.settings import Settings
from chronic.temporal_client import connect_options
from models.policy import load_policy
from workers import ROLES
from workers.runner import _runtime, metrics_port


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


def test_a_second_worker_of_a_role_takes_the_next_metrics_port() -> None:
    """`chronic worker assignment` twice on one machine: the second does not die on the first's
    metrics port, it serves on the role's next slot (base + len(ROLES) + N)."""
    index = list(ROLES).index("assignment")
    with socket.socket() as first:  # the first assignment worker's endpoint
        while True:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port + len(ROLES))) != 0:
                    break
            first.close()
            first = socket.socket()
        first.listen()
        settings = Settings(_env_file=None, metrics_port_base=port - index)
        assert metrics_port("assignment", settings) == port
        runtime = _runtime("assignment", settings)
        assert runtime is not None
        second = metrics_port("assignment", settings, slot=1)
        assert second == port + len(ROLES)
        with urllib.request.urlopen(f"http://127.0.0.1:{second}/metrics", timeout=10) as page:
            assert page.status == 200


def test_workflow_code_reaches_other_roles_only_through_their_contracts() -> None:
    """Workflows (and the models they import) name no module of ``workers/`` or
    ``activities/``: the activities they call are the contracts of ``models/roles``."""
    import ast

    root = Path(__file__).resolve().parents[1]
    offending = []
    for folder in ("workflows", "models"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else []
                )
                offending += [
                    f"{path.relative_to(root)}: {name}"
                    for name in names
                    if name.split(".")[0] in ("workers", "activities", "chronic")
                ]
    assert offending == []

"""Shared fixtures: a real embedded Postgres on a free loopback port for the session."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chronic.embedded.postgres import EmbeddedPostgres


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
async def embedded_postgres(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[EmbeddedPostgres]:
    root: Path = tmp_path_factory.mktemp("pg")
    server = EmbeddedPostgres(root / "data", free_port())
    with (root / "postgres.log").open("wb") as log:
        proc = server.start(stdout=log, stderr=subprocess.STDOUT)
        try:
            await server.wait_ready()
            yield server
        finally:
            proc.terminate()
            proc.wait(timeout=30)

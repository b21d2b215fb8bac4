"""The schema of the business database: Alembic migrations, run from code.

``chronic db upgrade``, ``chronic dev up`` and the test fixtures all go through
:func:`upgrade`, so the schema a developer tests against is the one production gets. The
Alembic configuration is built here rather than read from ``alembic.ini``: the scripts are found
through the installed :mod:`migrations` package, so the commands work from any working
directory and from an installed wheel. (``alembic.ini`` at the repository root exists only for
developers running ``alembic revision --autogenerate``.)

This module also owns the one answer to "can we reach the database at all?"
(:func:`check_reachable`), so every command that needs PostgreSQL fails with the same readable
line instead of a driver traceback.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

import migrations
from chronic.settings import get_settings

# Every migration run takes this transaction-level advisory lock first (here and in
# migrations/env.py), so two processes upgrading at once run one after the other and the second
# finds the schema already at head. Any fixed 64-bit number works; this one spells "chronic".
MIGRATION_LOCK_KEY = 0x6368726F6E6963

_SCRIPT_LOCATION = Path(migrations.__file__).resolve().parent
_CONNECT_TIMEOUT_SECONDS = 5.0


class DatabaseUnreachable(Exception):
    """PostgreSQL could not be reached or refused us; ``str()`` is one line for a person."""


def mask_url(url: str) -> str:
    """``url`` with the password replaced by ``***`` (safe to print and log)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable database URL>"


def alembic_config(url: str) -> Config:
    """The Alembic configuration for the database at ``url``, independent of the working dir."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    # ConfigParser interpolates %: a percent-encoded password (p%40ss) must be escaped.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``; a no-op when it is already there.

    Safe to run from several processes at once (they serialise on an advisory lock).
    """
    await _run_locked(url, lambda config: command.upgrade(config, revision))


async def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"-1"``, ``"base"``, an ID)."""
    await _run_locked(url, lambda config: command.downgrade(config, revision))


async def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None when it was never migrated."""
    engine = create_async_engine(url, poolclass=sa.NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


def head() -> str | None:
    """The newest revision shipped with this version of chronic."""
    return ScriptDirectory(str(_SCRIPT_LOCATION)).get_current_head()


async def _run_locked(url: str, run: Callable[[Config], None]) -> None:
    config = alembic_config(url)
    engine = create_async_engine(url, poolclass=sa.NullPool)
    try:
        # One transaction for the whole run: the lock is released by its commit or rollback,
        # so a crashed migration can never leave the lock held. Taking it here, before Alembic
        # starts, also keeps two upgrades of one process apart: Alembic's `context`/`op`
        # proxies are process globals and must not be used by two runs interleaved.
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )

            def in_alembic(sync: Connection) -> None:
                config.attributes["connection"] = sync
                run(config)

            await conn.run_sync(in_alembic)
    finally:
        await engine.dispose()


async def check_reachable(url: str | None = None) -> str:
    """Connect once to the database at ``url`` (default: the configured one) and return the URL.

    Raises:
        DatabaseUnreachable: with one line saying what is wrong and what to do about it —
            the server does not answer, the login or the database does not exist, or the URL
            is not a ``postgresql+asyncpg://`` URL.
    """
    configured = url is None
    if url is None:
        url = get_settings().resolved_database_url()
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseUnreachable(
            f"DATABASE_URL is not a database URL ({mask_url(url)}); "
            "use postgresql+asyncpg://user:password@host:port/database"
        ) from None
    if parsed.drivername != "postgresql+asyncpg":
        raise DatabaseUnreachable(
            f"DATABASE_URL must start with postgresql+asyncpg:// (got {parsed.drivername}://…); "
            "chronic talks to PostgreSQL through asyncpg only"
        )
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    hint = (
        "start the stack with `chronic dev up` or set DATABASE_URL"
        if configured and get_settings().uses_embedded_postgres
        else f"check that the server is running and DATABASE_URL ({mask_url(url)}) is right"
    )
    try:
        conn = await asyncpg.connect(
            host=parsed.host,
            port=parsed.port,
            user=parsed.username,
            password=parsed.password,
            database=parsed.database,
            timeout=_CONNECT_TIMEOUT_SECONDS,
        )
    except asyncpg.InvalidCatalogNameError:
        raise DatabaseUnreachable(
            f"PostgreSQL at {where} has no database {parsed.database!r} — create it "
            f"(`chronic dev up` creates the embedded one) or name another in DATABASE_URL"
        ) from None
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as e:
        raise DatabaseUnreachable(
            f"PostgreSQL at {where} refused the login of user {parsed.username!r}: "
            f"{_first_line(e)} — check the user and password in DATABASE_URL"
        ) from None
    except asyncpg.PostgresError as e:
        raise DatabaseUnreachable(
            f"PostgreSQL at {where} said: {_first_line(e)} — {hint}"
        ) from None
    except (OSError, TimeoutError) as e:
        raise DatabaseUnreachable(
            f"cannot reach PostgreSQL at {where}: {_reason(e)} — {hint}"
        ) from None
    await conn.close()
    return url


def _reason(error: BaseException) -> str:
    """Why a TCP connection failed, in the words of ``ss``/``psql`` rather than of asyncio."""
    if isinstance(error, TimeoutError):
        return f"no answer within {_CONNECT_TIMEOUT_SECONDS:.0f} s"
    if isinstance(error, socket.gaierror):
        return "unknown host name"
    if (
        isinstance(error, ConnectionRefusedError)
        or getattr(error, "errno", None) == errno.ECONNREFUSED
    ):
        return "connection refused"
    # asyncio reports several addresses (::1 and 127.0.0.1 for localhost) as one OSError
    # "Multiple exceptions: [Errno 111] Connect call failed …".
    text = str(error)
    if "Connect call failed" in text or "Connection refused" in text:
        return "connection refused"
    return _first_line(error) or type(error).__name__


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else ""

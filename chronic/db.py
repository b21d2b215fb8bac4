"""The business database: one async engine per process, sessions for activities.

Activities import this module (and :mod:`models.tables`); workflow code never does.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Executable, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel.ext.asyncio.session import AsyncSession

from chronic.settings import Settings, get_settings


def create_engine(
    url: str, *, pool_size: int = 5, max_overflow: int = 5, ping_idle_after: float | None = None
) -> AsyncEngine:
    """An asyncpg engine for ``url`` (``postgresql+asyncpg://…``).

    A connection is checked before use (a pre-ping: BEGIN, an empty query, ROLLBACK — three
    round trips), so one Postgres closed meanwhile is replaced instead of failing the caller.
    With ``ping_idle_after`` only a connection idle that many seconds is checked: one returned
    moments ago is alive, and a busy process would otherwise spend half its round trips on
    pings.
    """
    if not url.startswith("postgresql+asyncpg://"):
        raise ValueError(
            f"DATABASE_URL must start with postgresql+asyncpg:// (got {url.split('://')[0]}://…); "
            "chronic talks to PostgreSQL through asyncpg only."
        )
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=ping_idle_after is None,
    )
    if ping_idle_after is not None:
        _ping_when_idle(engine, ping_idle_after)
    return engine


def _ping_when_idle(engine: AsyncEngine, seconds: float) -> None:
    """Check a connection at checkout only when it was idle for ``seconds`` (SQLAlchemy's
    checkout-event recipe: a DisconnectionError makes the pool drop it and take another)."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def taken(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < seconds:
            return  # new, or returned moments ago
        try:
            dbapi_connection.ping()
        except Exception as error:
            raise DisconnectionError(str(error)) from error


HALL_PING_IDLE_AFTER = 2.0
"""Seconds a hall connection may sit idle and still be used without a pre-ping."""


class Database:
    """The engine and session factory of one process."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        max_overflow: int = 5,
        ping_idle_after: float | None = None,
    ) -> None:
        self.url = url
        self.engine = create_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, ping_idle_after=ping_idle_after
        )
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self._read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._reads = async_sessionmaker(
            self._read_engine,
            class_=AsyncSession,
            expire_on_commit=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Database:
        settings = settings or get_settings()
        return cls(settings.resolved_database_url())

    @classmethod
    def for_hall(cls, settings: Settings) -> Database:
        """A hall process's database: its pool sized by ``CHRONIC_HALL_DB_POOL_SIZE`` and
        ``CHRONIC_HALL_DB_MAX_OVERFLOW`` (many pages in flight at once), a connection checked
        only when idle for :data:`HALL_PING_IDLE_AFTER` seconds."""
        return cls(
            settings.resolved_database_url(),
            pool_size=settings.hall_db_pool_size,
            max_overflow=settings.hall_db_max_overflow,
            ping_idle_after=HALL_PING_IDLE_AFTER,
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reading only: each statement on its own (autocommit), with no BEGIN
        and COMMIT around them — two round trips fewer. Under Postgres' READ COMMITTED a
        transaction gives its statements no common snapshot either, so they read what they
        would in :meth:`session`. Not for writes: each would be committed at once."""
        async with self._reads() as session:
            yield session

    async def read_row(
        self, statement: Executable, params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """The first row of a Core ``statement`` on an autocommit connection (as
        :meth:`reading`), without an ORM session around it: for the one query every request
        makes."""
        async with self._read_engine.connect() as connection:
            row = (await connection.execute(statement, params)).first()
        return None if row is None else tuple(row)

    async def dispose(self) -> None:
        await self.engine.dispose()

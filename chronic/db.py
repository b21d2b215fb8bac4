"""The business database: one async engine per process, sessions for activities.

Activities import this module (and :mod:`models.tables`); workflow code never does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from chronic.settings import Settings, get_settings


def create_engine(url: str, *, pool_size: int = 5, max_overflow: int = 5) -> AsyncEngine:
    """An asyncpg engine for ``url`` (``postgresql+asyncpg://…``)."""
    if not url.startswith("postgresql+asyncpg://"):
        raise ValueError(
            f"DATABASE_URL must start with postgresql+asyncpg:// (got {url.split('://')[0]}://…); "
            "chronic talks to PostgreSQL through asyncpg only."
        )
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True
    )


class Database:
    """The engine and session factory of one process."""

    def __init__(self, url: str, *, pool_size: int = 5, max_overflow: int = 5) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Database:
        settings = settings or get_settings()
        return cls(settings.resolved_database_url())

    @classmethod
    def for_hall(cls, settings: Settings) -> Database:
        """A hall process's database: its pool sized by ``CHRONIC_HALL_DB_POOL_SIZE`` and
        ``CHRONIC_HALL_DB_MAX_OVERFLOW`` (many pages in flight at once)."""
        return cls(
            settings.resolved_database_url(),
            pool_size=settings.hall_db_pool_size,
            max_overflow=settings.hall_db_max_overflow,
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self._sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()

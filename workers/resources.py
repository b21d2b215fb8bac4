"""What a worker process shares between its activities: settings and one database pool."""

from __future__ import annotations

from chronic.db import Database
from chronic.settings import Settings


class Resources:
    """Opened lazily, so the orchestration worker (no I/O) never connects to Postgres.

    Tests pass their own database; a pool this object did not open is not closed by it.
    """

    def __init__(self, settings: Settings, database: Database | None = None) -> None:
        self.settings = settings
        self._database = database
        self._owns_database = database is None

    def database(self) -> Database:
        if self._database is None:
            self._database = Database.from_settings(self.settings)
        return self._database

    async def close(self) -> None:
        if self._database is not None and self._owns_database:
            await self._database.dispose()

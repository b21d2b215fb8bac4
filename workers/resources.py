"""What a worker process shares between its activities: settings and one database pool."""

from __future__ import annotations

from dataclasses import dataclass, field

from chronic.db import Database
from chronic.settings import Settings


@dataclass
class Resources:
    """Opened lazily, so the orchestration worker (no I/O) never connects to Postgres."""

    settings: Settings
    _database: Database | None = field(default=None, init=False)

    def database(self) -> Database:
        if self._database is None:
            self._database = Database.from_settings(self.settings)
        return self._database

    async def close(self) -> None:
        if self._database is not None:
            await self._database.dispose()

"""What a worker process shares between its activities: settings, one database pool, the client."""

from __future__ import annotations

from temporalio.client import Client

from chronic.db import Database
from chronic.settings import Settings


class Resources:
    """Opened lazily, so the orchestration worker (no I/O) never connects to Postgres.

    Tests pass their own database; a pool this object did not open is not closed by it. The
    Temporal client is the one the runner connected (the review worker's reconciler starts
    workflows and reads their histories with it).
    """

    def __init__(
        self, settings: Settings, database: Database | None = None, client: Client | None = None
    ) -> None:
        self.settings = settings
        self._database = database
        self._owns_database = database is None
        self._client = client

    def database(self) -> Database:
        if self._database is None:
            self._database = Database.from_settings(self.settings)
        return self._database

    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("this worker's Resources were built without a Temporal client")
        return self._client

    async def close(self) -> None:
        if self._database is not None and self._owns_database:
            await self._database.dispose()

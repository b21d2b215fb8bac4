"""Alembic environment of the business database (async, asyncpg).

Two ways in:

* From code (:mod:`chronic.migrate`, used by ``chronic db`` and the test fixtures): the caller
  opens the connection, takes the migration lock and passes the connection in
  ``config.attributes["connection"]``; we run on it and leave the transaction to the caller.
* From the ``alembic`` command line (developers writing a revision): we open our own async
  engine on ``sqlalchemy.url``, or on chronic's configured database when that is unset.

Either way the migration runs in one transaction that first takes the advisory lock
:data:`chronic.migrate.MIGRATION_LOCK_KEY`: two processes upgrading at once serialise, and the
second one then finds the schema at head and does nothing.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import models.tables  # noqa: F401 - registers every table on SQLModel.metadata
from chronic.migrate import MIGRATION_LOCK_KEY
from chronic.settings import get_settings

config = context.config
target_metadata = SQLModel.metadata

# Only the alembic command line configures logging from alembic.ini; chronic's own commands
# keep the logging set up by the application.
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render SQLModel's AutoString as plain ``sa.String`` so revisions never import sqlmodel."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=render_item,
        **kwargs,
    )


def _lock(connection: Connection) -> None:
    # Transaction-scoped: released by the commit or rollback of the migration, never leaked.
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def run_migrations_on(connection: Connection) -> None:
    """Run the migrations on an open connection, under the migration lock."""
    _configure(connection=connection)
    with context.begin_transaction():
        _lock(connection)
        context.run_migrations()


async def run_migrations_with_own_engine(url: str) -> None:
    """The ``alembic`` command line: our own engine, no pooling (one connection, then done)."""
    engine = create_async_engine(url, poolclass=sa.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations_on)
            await connection.commit()
    finally:
        await engine.dispose()


def database_url() -> str:
    """``sqlalchemy.url`` of the configuration, else the database chronic is configured for."""
    return config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url()


if context.is_offline_mode():
    # `alembic upgrade --sql`: write the SQL for a DBA instead of running it.
    _configure(url=database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    run_migrations_on(given)
else:
    asyncio.run(run_migrations_with_own_engine(database_url()))

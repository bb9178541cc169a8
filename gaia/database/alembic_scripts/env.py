"""Alembic environment: async migrations on asyncpg.

The URL is, first found: ``-x url=…`` on the command line, the ``sqlalchemy.url`` set by a
caller on the Alembic config (tests, the localnet, the admin ``db`` command), or the project
settings (``GAIA_DATABASE_URL``).

The whole command runs in one transaction (``transaction_per_migration=False``): adopting the
previous validator's database spans several revisions, and a failure in any of them must leave
the database as it was, never half-migrated.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import gaia.database.validator_schema  # noqa: F401 - the validator's tables, on Base
import gaia.jobs.schema  # noqa: F401 - the job queue's table, on Base
from gaia.config import Settings
from gaia.database.base import Base
from gaia.database.migrations import VERSION_TABLE

target_metadata = Base.metadata


def _database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or context.config.get_main_option("sqlalchemy.url")
    if url:
        return Settings(database_url=url).database_url
    return Settings().database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=False,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()
        _drop_version_table_at_base(connection)


def _drop_version_table_at_base(connection: Connection) -> None:
    """At base nothing of this project is left, so neither is its version table: a database
    given back to the previous validator is the one it had."""
    exists = connection.scalar(text(f"SELECT to_regclass('{VERSION_TABLE}') IS NOT NULL"))
    if exists and connection.scalar(text(f"SELECT count(*) FROM {VERSION_TABLE}")) == 0:
        connection.execute(text(f"DROP TABLE {VERSION_TABLE}"))


async def _run_online() -> None:
    engine = create_async_engine(_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True,
                      version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())

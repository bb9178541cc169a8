"""The localnet's database on the test server: made anew and migrated on every start, a
refused name or an unreachable server stops it with one line, a configured server is used
as it is (no private cluster)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from gaia.config import Settings
from gaia.database.local_postgres import free_port
from gaia.localnet.database import (
    DatabaseUnavailable,
    configured_server_url,
    fresh_database,
    prepare_database,
)
from tests.fixtures.database import drop_database, server_url


@pytest.fixture
def name() -> Iterator[str]:
    name = f"gaia_localnet_db_{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        drop_database(name)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return {row["tablename"] for row in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    finally:
        await conn.close()


async def _leave_a_table(url: str) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute("CREATE TABLE leftover (x int)")
    finally:
        await conn.close()


def test_each_start_gets_a_fresh_migrated_database(name: str) -> None:
    url = fresh_database(server_url(), name)
    tables = asyncio.run(_tables(url))
    assert {"gaia_weather_alembic_version", "weather_forecast_runs", "weather_miner_responses",
            "validator_jobs"} <= tables
    asyncio.run(_leave_a_table(url))
    again = fresh_database(server_url(), name)
    assert again == url
    assert "leftover" not in asyncio.run(_tables(again))  # the old one was dropped


@pytest.mark.parametrize("bad", ["gaia-test", 'x"; DROP DATABASE postgres; --', "a b"])
def test_a_name_that_is_not_an_identifier_is_refused_before_any_sql(bad: str) -> None:
    with pytest.raises(ValueError, match="use letters, digits and '_' only"):
        fresh_database(server_url(), bad)


def test_a_server_that_does_not_answer_is_one_line_without_the_password() -> None:
    closed = f"postgresql://gaia:secret@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(DatabaseUnavailable, match="cannot connect to PostgreSQL at ") as error:
        fresh_database(closed, "gaia_unused")
    assert "secret" not in str(error.value)


def test_only_a_configured_url_counts_as_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GAIA_DATABASE_URL", raising=False)
    assert configured_server_url(Settings(_env_file=None)) is None  # type: ignore[call-arg]
    monkeypatch.setenv("GAIA_DATABASE_URL", server_url())
    configured = configured_server_url(Settings(_env_file=None))  # type: ignore[call-arg]
    assert configured is not None
    assert (make_url(configured).host, make_url(configured).port) == (
        make_url(server_url()).host, make_url(server_url()).port)


def test_a_configured_server_starts_no_private_cluster(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("GAIA_DATABASE_URL", server_url())
    database = prepare_database(Settings(_env_file=None), tmp_path / "postgres", name)  # type: ignore[call-arg]
    assert database.cluster is None and not (tmp_path / "postgres").exists()
    assert make_url(database.url).database == name
    database.stop()  # nothing to stop: the configured server keeps running
    assert "gaia_weather_alembic_version" in asyncio.run(_tables(database.url))

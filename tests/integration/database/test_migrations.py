"""Migrations on a real PostgreSQL: the pre-refactor schema, the refactor, and the way back."""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import UTC, datetime, timedelta
from types import ModuleType

import asyncpg
import pytest
from sqlalchemy.engine import make_url

import gaia.database.validator_schema  # noqa: F401 - the validator's tables, on Base
import gaia.jobs.schema  # noqa: F401 - the job queue's table, on Base
from gaia.database import migrations
from gaia.database.base import Base
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus


def _revision_module(filename: str) -> ModuleType:
    path = migrations.SCRIPT_DIRECTORY / "versions" / filename
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFACTOR = _revision_module("0002_weather_refactor.py")
PRE_REFACTOR = _revision_module("0001_pre_refactor_schema.py")
INIT = datetime(2026, 11, 20, 12, tzinfo=UTC)
VERSION = migrations.VERSION_TABLE


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def _seed_pre_refactor(url: str) -> dict[str, str]:
    """One run with a response in every old status; returns hotkey -> old status."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        run_id = await conn.fetchval(
            "INSERT INTO weather_forecast_runs (run_initiation_time, target_forecast_time_utc,"
            " gfs_init_time_utc, status) VALUES ($1, $2, $2, 'awaiting_inference_results')"
            " RETURNING id",
            INIT + timedelta(hours=6), INIT,
        )
        hotkeys = {}
        for uid, status in enumerate(PRE_REFACTOR.PRE_REFACTOR_RESPONSE_STATUSES):
            hotkey = f"5Hotkey{uid:02d}"
            hotkeys[hotkey] = status
            await conn.execute(
                "INSERT INTO weather_miner_responses (run_id, miner_uid, miner_hotkey,"
                " response_time, job_id, status, input_hash_miner, input_hash_validator,"
                " input_hash_match, verification_passed)"
                " VALUES ($1, $2, $3, now(), $4, $5, 'abc', 'abc', true, true)",
                run_id, uid, hotkey, f"job-{uid}", status,
            )
        return hotkeys
    finally:
        await conn.close()


async def _statuses(url: str) -> dict[str, str]:
    rows = await _fetch(url, "SELECT miner_hotkey, status::text AS s FROM weather_miner_responses")
    return {r["miner_hotkey"]: r["s"] for r in rows}


async def _columns(url: str, table: str) -> set[str]:
    rows = await _fetch(
        url, "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table
    )
    return {r["column_name"] for r in rows}


async def _enum_values(url: str, name: str) -> list[str]:
    rows = await _fetch(
        url,
        "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid"
        " WHERE t.typname = $1 ORDER BY e.enumsortorder",
        name,
    )
    return [r["enumlabel"] for r in rows]


def test_refactor_maps_every_old_status_and_back(empty_database_url: str) -> None:
    url = empty_database_url
    migrations.upgrade(url, "0001")
    hotkeys = asyncio.run(_seed_pre_refactor(url))
    assert set(hotkeys.values()) == set(PRE_REFACTOR.PRE_REFACTOR_RESPONSE_STATUSES)

    migrations.upgrade(url, "head")
    upgraded = asyncio.run(_statuses(url))
    for hotkey, old in hotkeys.items():
        assert upgraded[hotkey] == REFACTOR.RESPONSE_STATUS_UPGRADE[old], old
    assert asyncio.run(_enum_values(url, "weather_response_status")) == [
        s.value for s in MinerResponseStatus
    ]
    columns = asyncio.run(_columns(url, "weather_miner_responses"))
    assert not columns & set(REFACTOR.DROPPED_RESPONSE_COLUMNS)
    assert {"inference_started_at", "manifest_hash", "manifest_fetched_at"} <= columns
    run = asyncio.run(_fetch(url, "SELECT status::text AS s, mode::text AS m, commit_deadline"
                                  " FROM weather_forecast_runs"))[0]
    assert (run["s"], run["m"]) == ("querying_miners", "live")
    assert run["commit_deadline"] > INIT
    failed = asyncio.run(_fetch(url, "SELECT failure_reason, failed_step FROM"
                                     " weather_miner_responses WHERE status = 'failed'"))[0]
    assert failed["failure_reason"] and failed["failed_step"]

    migrations.downgrade(url, "0001")
    downgraded = asyncio.run(_statuses(url))
    for hotkey, old in hotkeys.items():
        expected = REFACTOR.RESPONSE_STATUS_DOWNGRADE[REFACTOR.RESPONSE_STATUS_UPGRADE[old]]
        assert downgraded[hotkey] == expected, old
    assert asyncio.run(_enum_values(url, "weather_response_status")) == list(
        PRE_REFACTOR.PRE_REFACTOR_RESPONSE_STATUSES
    )
    assert set(REFACTOR.DROPPED_RESPONSE_COLUMNS) <= asyncio.run(
        _columns(url, "weather_miner_responses")
    )
    old_run = asyncio.run(_fetch(url, "SELECT status FROM weather_forecast_runs"))[0]
    assert old_run["status"] == "awaiting_inference_results"

    migrations.upgrade(url, "head")
    assert asyncio.run(_statuses(url)) == upgraded


def test_every_status_mapping_is_total() -> None:
    assert set(REFACTOR.RESPONSE_STATUS_UPGRADE) == set(REFACTOR.OLD_RESPONSE_STATUSES)
    assert set(REFACTOR.RESPONSE_STATUS_UPGRADE.values()) <= set(REFACTOR.NEW_RESPONSE_STATUSES)
    assert set(REFACTOR.RESPONSE_STATUS_DOWNGRADE) == set(REFACTOR.NEW_RESPONSE_STATUSES)
    assert set(REFACTOR.RESPONSE_STATUS_DOWNGRADE.values()) <= set(REFACTOR.OLD_RESPONSE_STATUSES)
    assert tuple(s.value for s in MinerResponseStatus) == REFACTOR.NEW_RESPONSE_STATUSES


def test_upgrade_refuses_duplicate_runs_with_a_clear_error(empty_database_url: str) -> None:
    url = empty_database_url
    migrations.upgrade(url, "0001")
    for _ in range(2):
        asyncio.run(_fetch(
            url,
            "INSERT INTO weather_forecast_runs (run_initiation_time, target_forecast_time_utc,"
            " gfs_init_time_utc) VALUES ($1, $1, $1)",
            INIT,
        ))
    with pytest.raises(RuntimeError, match="more than one row per GFS init time"):
        migrations.upgrade(url, "head")
    assert asyncio.run(_columns(url, "weather_miner_responses")) >= {"input_hash_match"}



async def _catalog(url: str) -> list[tuple[str, ...]]:
    """Tables, columns, types, defaults, nullability, constraints, indexes and enums."""
    queries = [
        "SELECT table_name, column_name, data_type, coalesce(column_default, ''), is_nullable,"
        " coalesce(character_maximum_length::text, '') FROM information_schema.columns"
        f" WHERE table_schema = 'public' AND table_name <> '{VERSION}'",
        # NOT NULL is compared through is_nullable above; PostgreSQL 18 also records it as a
        # constraint row (contype 'n') named after the column's first name, which renames keep.
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = 'public'::regnamespace AND contype <> 'n'"
        f" AND conrelid::regclass::text <> '{VERSION}'",
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        f" AND tablename <> '{VERSION}'",
        "SELECT t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e"
        " JOIN pg_type t ON t.oid = e.enumtypid GROUP BY t.typname",
        "SELECT sequencename, data_type::text FROM pg_sequences WHERE schemaname = 'public'",
    ]
    rows: list[tuple[str, ...]] = []
    for query in queries:
        rows += [tuple(str(v) for v in r.values()) for r in await _fetch(url, query)]
    return sorted(rows)


async def _create_all(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()


def test_head_is_exactly_the_models_schema(database_url: str, empty_database_url: str) -> None:
    asyncio.run(_create_all(empty_database_url))
    migrated, modelled = asyncio.run(_catalog(database_url)), asyncio.run(
        _catalog(empty_database_url)
    )
    assert migrated == modelled


def test_downgrade_to_base_and_up_again_gives_the_same_schema(empty_database_url: str) -> None:
    url = empty_database_url
    migrations.upgrade(url, "head")
    first = asyncio.run(_catalog(url))
    migrations.downgrade(url, "base")
    assert asyncio.run(_catalog(url)) == []
    migrations.upgrade(url, "head")
    assert asyncio.run(_catalog(url)) == first

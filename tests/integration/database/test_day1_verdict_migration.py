"""Revision 0008 on a real PostgreSQL: the day-1 verdict moves onto the response row (filled
from the day-1 summary score rows), runs get their grid, the ``missing`` score column goes;
and back, and up again, with the data kept."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from gaia.database import migrations
from gaia.database.validator_schema import WeatherMinerResponse
from gaia.tasks.defined_tasks.weather.pipeline.steps.era5_step import write_rollup
from gaia.tasks.defined_tasks.weather.scoring.day1 import Day1Verdict
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus as S
from gaia.tasks.defined_tasks.weather.states import RunMode
from gaia.validator.database import validator_database_manager as db

INIT = datetime(2026, 11, 20, 12, tzinfo=UTC)
LEADS = (24, 48)
# hotkey -> (status, day-1 summary rows as stored before 0008: score, passed, clone)
RESPONSES: dict[str, tuple[str, tuple[float, float, float] | None]] = {
    "5Awaiting": ("day1_scored", (0.7, 1.0, 0.0)),
    "5Clone": ("era5_scoring", (0.95, 1.0, 1.0)),
    "5Withdrawn": ("failed", (0.4, 0.0, 0.0)),  # failed after day-1: still rolls up
    "5Polling": ("inference_running", None),
}


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _seed_0007(url: str) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        run_id = await conn.fetchval(
            "INSERT INTO weather_forecast_runs (gfs_init_time, status, commit_deadline)"
            " VALUES ($1, 'scoring_era5', $2) RETURNING id", INIT, INIT + timedelta(hours=9))
        for hotkey, (status, summary) in RESPONSES.items():
            await conn.execute(
                "INSERT INTO weather_miner_responses (run_id, miner_hotkey, status)"
                " VALUES ($1, $2, $3)", run_id, hotkey, status)
            for metric, value in zip(("score", "passed", "clone"), summary or (), strict=False):
                await conn.execute(
                    "INSERT INTO weather_miner_scores (run_id, miner_hotkey, kind, variable,"
                    " level, lead_hours, metric, value) VALUES ($1, $2, 'day1', 'all', 0, 0,"
                    " $3, $4)", run_id, hotkey, metric, value)
        await conn.execute(  # one ERA5 lead scored for the awaiting miner
            "INSERT INTO weather_miner_scores (run_id, miner_hotkey, kind, variable, level,"
            " lead_hours, metric, value) VALUES ($1, '5Awaiting', 'era5', 'msl', 0, 24,"
            " 'skill', 0.5)", run_id)
    finally:
        await conn.close()


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def _verdicts(url: str) -> dict[str, tuple[object, object, object]]:
    rows = await _fetch(url, "SELECT miner_hotkey, day1_score, day1_passed, day1_clone"
                             " FROM weather_miner_responses")
    return {r["miner_hotkey"]: (r["day1_score"], r["day1_passed"], r["day1_clone"]) for r in rows}


async def _columns(url: str, table: str) -> dict[str, str | None]:
    rows = await _fetch(url, "SELECT column_name, column_default FROM information_schema.columns"
                             f" WHERE table_name = '{table}'")
    return {r["column_name"]: r["column_default"] for r in rows}


async def _roll_up(url: str, hotkey: str) -> float:
    engine = create_async_engine(url)
    try:
        async with async_sessionmaker(engine).begin() as session:
            return (await write_rollup(session, 1, hotkey, LEADS)).score
    finally:
        await engine.dispose()


def test_upgrade_fills_the_verdict_from_the_summary_rows(empty_database_url: str) -> None:
    url = empty_database_url
    migrations.upgrade(url, "0007")
    asyncio.run(_seed_0007(url))
    migrations.upgrade(url, "0008")

    assert asyncio.run(_verdicts(url)) == {
        "5Awaiting": (0.7, True, False), "5Clone": (0.95, True, True),
        "5Withdrawn": (0.4, False, False), "5Polling": (None, None, None),
    }
    run = asyncio.run(_fetch(url, "SELECT grid_deg FROM weather_forecast_runs"))[0]
    assert run["grid_deg"] == 0.25
    assert asyncio.run(_columns(url, "weather_forecast_runs"))["grid_deg"] is None  # no default
    assert "missing" not in asyncio.run(_columns(url, "weather_miner_scores"))
    # the in-flight run rolls up from the row: S = ½·0.7 + ½·0.5 = 0.6, score 0.8
    assert asyncio.run(_roll_up(url, "5Awaiting")) == pytest.approx(0.8)
    assert asyncio.run(_roll_up(url, "5Clone")) == 0.0  # gated
    with pytest.raises(LookupError, match="no day-1 verdict"):
        asyncio.run(_roll_up(url, "5Polling"))


def test_a_half_written_verdict_is_refused(empty_database_url: str) -> None:
    url = empty_database_url
    migrations.upgrade(url, "head")
    asyncio.run(_seed_0007_rows_at_head(url))
    with pytest.raises(asyncpg.CheckViolationError):
        asyncio.run(_fetch(url, "UPDATE weather_miner_responses SET day1_score = 0.5"))


async def _seed_0007_rows_at_head(url: str) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        run_id = await conn.fetchval(
            "INSERT INTO weather_forecast_runs (gfs_init_time, commit_deadline, grid_deg)"
            " VALUES ($1, $1, 5.0) RETURNING id", INIT)
        await conn.execute("INSERT INTO weather_miner_responses (run_id, miner_hotkey)"
                           " VALUES ($1, '5Miner')", run_id)
    finally:
        await conn.close()


def test_downgrade_restores_the_missing_column_and_up_again_keeps_the_verdicts(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    migrations.upgrade(url, "0007")
    asyncio.run(_seed_0007(url))
    migrations.upgrade(url, "0008")
    upgraded = asyncio.run(_verdicts(url))

    migrations.downgrade(url, "0007")
    responses = asyncio.run(_columns(url, "weather_miner_responses"))
    assert not {"day1_score", "day1_passed", "day1_clone"} & set(responses)
    assert "grid_deg" not in asyncio.run(_columns(url, "weather_forecast_runs"))
    assert asyncio.run(_columns(url, "weather_miner_scores"))["missing"] == "false"
    rows = asyncio.run(_fetch(url, "SELECT DISTINCT missing FROM weather_miner_scores"))
    assert [r["missing"] for r in rows] == [False]

    migrations.upgrade(url, "head")
    assert asyncio.run(_verdicts(url)) == upgraded


async def test_a_verdict_written_with_day1_scored_reads_back_as_it_was(
    session_factory: async_sessionmaker,
) -> None:
    verdict = Day1Verdict(0.3, passed=False, clone=True)
    async with session_factory.begin() as session:
        run_id, _ = await db.create_run(session, INIT, RunMode.LIVE, INIT, grid_deg=5.0)
        response_id = await db.insert_response(session, run_id, "5Miner", 1)
        await session.execute(update(WeatherMinerResponse).values(status=S.DAY1_SCORING))
    async with session_factory.begin() as session:
        with pytest.raises(LookupError):
            await db.day1_verdict(session, run_id, "5Miner")
        await db.transition_response(session, response_id, S.DAY1_SCORING, S.DAY1_SCORED,
                                     **db.verdict_columns(verdict))
    async with session_factory() as session:
        assert await db.day1_verdict(session, run_id, "5Miner") == verdict
        assert (await db.get_run(session, run_id)).grid_deg == 5.0

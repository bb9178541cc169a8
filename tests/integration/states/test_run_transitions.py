"""The run's conditional updates on a real PostgreSQL: the machine's moves follow
``RUN_TRANSITIONS``, an operator's override is its own call, the roll-up only goes forward."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker

from gaia.database.validator_schema import WeatherForecastRun, WeatherMinerResponse
from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG
from gaia.tasks.defined_tasks.weather.states import (
    BEFORE_FAN_OUT_RUN_STATUSES,
    RUN_TRANSITIONS,
    TERMINAL_RUN_STATUSES,
    RunMode,
)
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus as S
from gaia.tasks.defined_tasks.weather.states import RunStatus as R
from gaia.validator.database import validator_database_manager as db

INIT = datetime(2026, 11, 27, 12, tzinfo=UTC)
MACHINE_TARGETS = [t for t in R if any(t in nxt for nxt in RUN_TRANSITIONS.values())]


async def _run_in(factory: async_sessionmaker, status: R, day: int) -> int:
    async with factory.begin() as session:
        init = INIT + timedelta(days=day)
        run_id, _ = await db.create_run(session, init, RunMode.LIVE, init + timedelta(hours=9),
                                        grid_deg=GRID_DEG)
        await db.admin_override_run(session, run_id, {R.CREATED}, status)
        return run_id


async def _run(factory: async_sessionmaker, run_id: int) -> WeatherForecastRun:
    async with factory() as session:
        return await db.get_run(session, run_id)


async def test_every_machine_move_happens_only_where_the_table_allows_it(
    session_factory: async_sessionmaker,
) -> None:
    for day, (current, target) in enumerate(itertools.product(R, MACHINE_TARGETS)):
        run_id = await _run_in(session_factory, current, day)
        async with session_factory.begin() as session:
            moved = await db.transition_run(session, run_id, target, error="why")
        allowed = target in RUN_TRANSITIONS[current]
        assert moved is allowed, (current, target)
        run = await _run(session_factory, run_id)
        assert run.status is (target if allowed else current)
        finished = current in TERMINAL_RUN_STATUSES or (allowed and target in TERMINAL_RUN_STATUSES)
        assert (run.completed_at is not None) is finished


async def test_within_narrows_the_sources(session_factory: async_sessionmaker) -> None:
    run_id = await _run_in(session_factory, R.SCORING_DAY1, 0)
    async with session_factory.begin() as session:
        assert not await db.transition_run(session, run_id, R.ERROR,
                                           within=BEFORE_FAN_OUT_RUN_STATUSES)
    assert (await _run(session_factory, run_id)).status is R.SCORING_DAY1
    async with session_factory.begin() as session:
        with pytest.raises(ValueError, match="no run status among"):
            await db.transition_run(session, run_id, R.GFS_READY, within={R.SCORING_DAY1})


async def test_an_admin_override_moves_a_finished_run_back(
    session_factory: async_sessionmaker,
) -> None:
    run_id = await _run_in(session_factory, R.COMPLETED, 0)
    async with session_factory.begin() as session:
        assert not await db.admin_override_run(session, run_id, {R.ERROR}, R.CREATED)
        assert await db.admin_override_run(session, run_id, {R.COMPLETED}, R.QUERYING_MINERS)
    assert (await _run(session_factory, run_id)).status is R.QUERYING_MINERS


async def test_the_roll_up_never_takes_a_run_back(session_factory: async_sessionmaker) -> None:
    run_id = await _run_in(session_factory, R.QUERYING_MINERS, 0)
    async with session_factory.begin() as session:
        early = await db.insert_response(session, run_id, "5A", 0)
        ready = await db.insert_response(session, run_id, "5B", 1)
        await session.execute(update(WeatherMinerResponse).where(WeatherMinerResponse.id == ready)
                              .values(status=S.FORECAST_READY))
        assert await db.refresh_run_status(session, run_id) is R.SCORING_DAY1
        await db.transition_response(session, ready, S.FORECAST_READY, S.FAILED,
                                     failure_reason="bad forecast", failed_step="day1_score")
        assert await db.refresh_run_status(session, run_id) is R.SCORING_DAY1
        await db.transition_response(session, early, S.CREATED, S.FAILED,
                                     failure_reason="miner offline", failed_step="query_miner")
        assert await db.refresh_run_status(session, run_id) is R.COMPLETED
    assert (await _run(session_factory, run_id)).completed_at is not None

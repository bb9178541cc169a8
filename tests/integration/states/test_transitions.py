"""The miner-response state machine on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from gaia.database.validator_schema import WeatherForecastRun, WeatherMinerResponse
from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG
from gaia.tasks.defined_tasks.weather.states import (
    VALID_TRANSITIONS,
    IllegalTransition,
    LostRace,
    MinerResponseStatus,
)
from gaia.validator.database.validator_database_manager import transition_response

S = MinerResponseStatus
INIT = datetime(2026, 11, 27, 12, tzinfo=UTC)
FAIL_FIELDS = {"failure_reason": "miner offline", "failed_step": "query_miner"}


def test_transitions_are_exactly_the_plans() -> None:
    assert VALID_TRANSITIONS == {
        S.CREATED: {S.FETCH_INITIATED, S.FAILED},
        S.FETCH_INITIATED: {S.INFERENCE_RUNNING, S.FAILED},
        S.INFERENCE_RUNNING: {S.FORECAST_READY, S.FAILED},
        S.FORECAST_READY: {S.DAY1_SCORING, S.FAILED},
        S.DAY1_SCORING: {S.DAY1_SCORED, S.FAILED},
        S.DAY1_SCORED: {S.ERA5_SCORING},
        S.ERA5_SCORING: {S.ERA5_SCORED, S.FAILED},
        S.ERA5_SCORED: set(),
        S.FAILED: set(),
    }


async def _response(factory: async_sessionmaker, status: MinerResponseStatus, hotkey: str) -> int:
    async with factory.begin() as session:
        run_id = await session.scalar(select(WeatherForecastRun.id).limit(1))
        if run_id is None:
            run_id = await session.scalar(
                insert(WeatherForecastRun)
                .values(gfs_init_time=INIT, commit_deadline=INIT + timedelta(hours=9),
                        grid_deg=GRID_DEG)
                .returning(WeatherForecastRun.id)
            )
        return await session.scalar(
            insert(WeatherMinerResponse)
            .values(run_id=run_id, miner_hotkey=hotkey, status=status)
            .returning(WeatherMinerResponse.id)
        )


async def _status(factory: async_sessionmaker, response_id: int) -> MinerResponseStatus:
    async with factory() as session:
        return await session.scalar(
            select(WeatherMinerResponse.status).where(WeatherMinerResponse.id == response_id)
        )


async def test_every_pair_is_allowed_or_refused(session_factory: async_sessionmaker) -> None:
    for n, (current, target) in enumerate(itertools.product(S, S)):
        response_id = await _response(session_factory, current, f"hk{n}")
        fields = FAIL_FIELDS if target is S.FAILED else {}
        if target in VALID_TRANSITIONS[current]:
            async with session_factory.begin() as session:
                await transition_response(session, response_id, current, target, **fields)
            assert await _status(session_factory, response_id) is target
        else:
            with pytest.raises(IllegalTransition):
                async with session_factory.begin() as session:
                    await transition_response(session, response_id, current, target, **fields)
            assert await _status(session_factory, response_id) is current


async def test_transition_from_a_stale_status_is_a_lost_race(
    session_factory: async_sessionmaker,
) -> None:
    response_id = await _response(session_factory, S.FETCH_INITIATED, "hk")
    with pytest.raises(LostRace):
        async with session_factory.begin() as session:
            await transition_response(session, response_id, S.CREATED, S.FETCH_INITIATED)
    assert await _status(session_factory, response_id) is S.FETCH_INITIATED


async def test_failed_needs_a_reason(session_factory: async_sessionmaker) -> None:
    response_id = await _response(session_factory, S.CREATED, "hk")
    with pytest.raises(ValueError, match="failure_reason"):
        async with session_factory.begin() as session:
            await transition_response(session, response_id, S.CREATED, S.FAILED)
    assert await _status(session_factory, response_id) is S.CREATED


async def test_two_racing_transitions_exactly_one_wins(
    session_factory: async_sessionmaker,
) -> None:
    response_id = await _response(session_factory, S.FORECAST_READY, "hk")
    gate = asyncio.Event()

    async def attempt(target: MinerResponseStatus) -> str:
        fields = FAIL_FIELDS if target is S.FAILED else {}
        try:
            async with session_factory.begin() as session:
                await gate.wait()
                await transition_response(session, response_id, S.FORECAST_READY, target, **fields)
            return "won"
        except LostRace:
            return "lost"

    tasks = [asyncio.create_task(attempt(t)) for t in (S.DAY1_SCORING, S.FAILED)]
    await asyncio.sleep(0.05)
    gate.set()
    outcomes = sorted(await asyncio.gather(*tasks))
    assert outcomes == ["lost", "won"]
    assert await _status(session_factory, response_id) in {S.DAY1_SCORING, S.FAILED}


async def test_transition_rolls_back_with_the_callers_transaction(
    session_factory: async_sessionmaker,
) -> None:
    response_id = await _response(session_factory, S.CREATED, "hk")
    with pytest.raises(RuntimeError):
        async with session_factory.begin() as session:
            await transition_response(session, response_id, S.CREATED, S.FETCH_INITIATED)
            raise RuntimeError("the enqueue after it failed")
    assert await _status(session_factory, response_id) is S.CREATED

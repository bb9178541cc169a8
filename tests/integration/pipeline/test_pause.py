"""Pause and resume on the real queue and database (``gaia.validator.pause``).

Paused: the 18:00 tick enqueues no run (the periodic weights still are); a run-create job or a
fan-out that is due waits without using attempts, and gives up at its commit deadline; a chain
that has started drains (its query and poll run, the forecast is committed). Resumed: the
day's run is created while its commit window is open, and not after it.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from gaia.chain.client import Neuron
from gaia.config import ValidatorSettings
from gaia.database.validator_schema import WeatherForecastRun, WeatherMinerResponse
from gaia.jobs.outcomes import Invalid, NotReady
from gaia.jobs.policy import resolve
from gaia.jobs.queue import JobQueue
from gaia.jobs.schema import JobStatus, ValidatorJob
from gaia.tasks.defined_tasks.weather.pipeline import orchestrator
from gaia.tasks.defined_tasks.weather.pipeline.job_types import RETRY_CONFIG, WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import (
    ResponsePayload,
    RunCreatePayload,
    RunPayload,
)
from gaia.tasks.defined_tasks.weather.pipeline.scheduler import PeriodicJob, Scheduler
from gaia.tasks.defined_tasks.weather.pipeline.steps.poll_miner_step import poll_miner
from gaia.tasks.defined_tasks.weather.pipeline.steps.query_miner_step import query_miner
from gaia.tasks.defined_tasks.weather.pipeline.timing import RunTiming
from gaia.tasks.defined_tasks.weather.pipeline.workers import all_policies
from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus as S
from gaia.tasks.defined_tasks.weather.states import RunMode, RunStatus
from gaia.validator import pause
from gaia.validator.database import validator_database_manager as db
from gaia.validator.periodic import SET_WEIGHTS
from tests.fixtures.miner import write_chain
from tests.fixtures.pipeline import fixed_clock, job_context, pipeline_context
from tests.integration.pipeline.test_polling import (
    INIT,
    QUERIED,
    Clock,
    CommitRecorder,
    ready,
    scripted_miner,
)

HOURLY = [PeriodicJob(SET_WEIGHTS, timedelta(hours=1))]
DAY_KEY = f"{WeatherJob.RUN_CREATE}:2026-11-28"


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 28, hour, minute, tzinfo=UTC)


def scheduler(factory: async_sessionmaker, now: datetime, *, forced: bool = False) -> Scheduler:
    return Scheduler(factory, JobQueue(all_policies()), RunTiming(), fixed_clock(now), HOURLY,
                     paused_by_setting=forced)


async def set_paused(factory: async_sessionmaker, paused: bool) -> str:
    async with factory.begin() as session:
        if paused:
            return await pause.pause(session, "upgrade", at(17, 50))
        return await pause.resume(session)


async def runs(factory: async_sessionmaker) -> list[WeatherForecastRun]:
    async with factory() as session:
        return list(await session.scalars(select(WeatherForecastRun)))


async def jobs(factory: async_sessionmaker, job_type: str) -> list[ValidatorJob]:
    async with factory() as session:
        return list(await session.scalars(
            select(ValidatorJob).where(ValidatorJob.job_type == job_type)))


async def test_paused_the_1800_tick_creates_nothing_but_weights_go_on(
    session_factory: async_sessionmaker,
) -> None:
    await set_paused(session_factory, True)
    assert await scheduler(session_factory, at(18)).tick() == [
        "validator.set_weights:2026-11-28T18:00:00"]
    assert await jobs(session_factory, WeatherJob.RUN_CREATE) == []
    assert await runs(session_factory) == []


async def test_resume_creates_the_days_run_while_its_window_is_open(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    await set_paused(session_factory, True)
    assert DAY_KEY not in await scheduler(session_factory, at(18)).tick()
    assert DAY_KEY not in await scheduler(session_factory, at(19)).tick()
    assert "resumed" in await set_paused(session_factory, False)
    assert DAY_KEY in await scheduler(session_factory, at(20, 15)).tick()
    [job] = await jobs(session_factory, WeatherJob.RUN_CREATE)
    ctx = pipeline_context(session_factory, tmp_path, clock=fixed_clock(at(20, 16)))
    await orchestrator.create_run(ctx, RunCreatePayload.model_validate(job.payload),
                                  job_context(session_factory, job.id, job.job_type))
    assert [(r.gfs_init_time, r.mode, r.status) for r in await runs(session_factory)] == [
        (at(12), RunMode.LIVE, RunStatus.CREATED)]


async def test_resumed_after_the_commit_window_the_day_is_skipped(
    session_factory: async_sessionmaker,
) -> None:
    await set_paused(session_factory, True)
    assert DAY_KEY not in await scheduler(session_factory, at(18)).tick()
    await set_paused(session_factory, False)
    assert DAY_KEY not in await scheduler(session_factory, at(21, 30)).tick()
    assert await jobs(session_factory, WeatherJob.RUN_CREATE) == []


async def test_the_setting_pauses_its_process_whatever_the_database_says(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    assert DAY_KEY not in await scheduler(session_factory, at(18), forced=True).tick()
    ctx = pipeline_context(session_factory, tmp_path, clock=fixed_clock(at(18)),
                           settings=ValidatorSettings(paused=True))
    payload = RunCreatePayload(init_time=at(12), mode=RunMode.LIVE, commit_deadline=at(21, 30))
    with pytest.raises(NotReady, match="paused by validator.paused on this process"):
        await orchestrator.create_run(ctx, payload, job_context(session_factory, 1, "create"))
    assert DAY_KEY in await scheduler(session_factory, at(18)).tick()  # another process


async def test_a_queued_run_create_waits_without_attempts_then_gives_up_at_the_deadline(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    """A run-create job queued before the pause (or a hindcast) creates no run while paused."""
    await set_paused(session_factory, True)
    payload = RunCreatePayload(init_time=at(12), mode=RunMode.LIVE, commit_deadline=at(21, 30))
    clock = Clock(at(18, 5))
    ctx = pipeline_context(session_factory, tmp_path, clock=clock)
    job = job_context(session_factory, 1, WeatherJob.RUN_CREATE)
    with pytest.raises(NotReady) as waiting:
        await orchestrator.create_run(ctx, payload, job)
    assert waiting.value.until == at(18, 5) + pause.PAUSE_RECHECK
    assert "run creation held: validator paused since 2026-11-28 17:50 UTC (upgrade)" in str(
        waiting.value)
    policy = RETRY_CONFIG[WeatherJob.RUN_CREATE]
    resolution = resolve(waiting.value, attempts=policy.max_attempts,
                         max_attempts=policy.max_attempts, timeout_s=policy.timeout_s,
                         policy=policy)
    assert resolution.status is JobStatus.QUEUED  # waiting never exhausts its attempts
    clock.now = at(21, 30)
    with pytest.raises(Invalid, match="held past the commit deadline 2026-11-28 21:30 UTC"):
        await orchestrator.create_run(ctx, payload, job)
    assert await runs(session_factory) == []


async def _run_ready_for_fan_out(factory: async_sessionmaker) -> int:
    async with factory.begin() as session:
        run_id, _ = await db.create_run(session, at(12), RunMode.LIVE, at(21, 30),
                                        grid_deg=GRID_DEG)
        await db.transition_run(session, run_id, RunStatus.GFS_DOWNLOADING)
        await db.transition_run(session, run_id, RunStatus.GFS_READY)
    return run_id


async def test_a_paused_fan_out_starts_no_chain_until_resumed(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    run_id = await _run_ready_for_fan_out(session_factory)
    write_chain(tmp_path / "neurons.json", [
        Neuron(1, "5Miner", "5Cold", "127.0.0.1", 8091, 10.0, False)])
    await set_paused(session_factory, True)
    ctx = pipeline_context(session_factory, tmp_path, clock=fixed_clock(at(18, 10)))
    payload, job = RunPayload(run_id=run_id), job_context(session_factory, 1, "orchestrate")
    with pytest.raises(NotReady, match="fan-out held"):
        await orchestrator.orchestrate_run(ctx, payload, job)
    assert await jobs(session_factory, WeatherJob.QUERY_MINER) == []
    await set_paused(session_factory, False)
    await orchestrator.orchestrate_run(ctx, payload, job)
    [query] = await jobs(session_factory, WeatherJob.QUERY_MINER)
    assert query.payload["miner_hotkey"] == "5Miner"
    assert [r.status for r in await runs(session_factory)] == [RunStatus.QUERYING_MINERS]


async def test_a_fan_out_held_to_the_commit_deadline_ends_the_run_in_error(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    run_id = await _run_ready_for_fan_out(session_factory)
    await set_paused(session_factory, True)
    ctx = pipeline_context(session_factory, tmp_path, clock=fixed_clock(at(21, 30)))
    payload = RunPayload(run_id=run_id)
    with pytest.raises(Invalid) as held:
        await orchestrator.orchestrate_run(ctx, payload, job_context(session_factory, 1, "o"))
    async with session_factory.begin() as session:  # the worker's give-up hook
        await orchestrator.run_failed(session, payload, held.value.reason)
    [run] = await runs(session_factory)
    assert run.status is RunStatus.ERROR and "fan-out held past the commit deadline" in run.error


async def test_a_started_chain_drains_while_paused(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    """Fanned out before the pause: the query asks the miner, the poll commits its forecast."""
    with scripted_miner() as miner:
        miner.initiate = (200, "forecast_ready")
        miner.status = lambda: ready(miner.job_id())
        async with session_factory.begin() as session:
            run_id, _ = await db.create_run(session, INIT, RunMode.LIVE,
                                            INIT + timedelta(hours=9, minutes=30),
                                            grid_deg=GRID_DEG)
            port = int(miner.base_url.rsplit(":", 1)[1])
            await db.sync_miners(session, [Neuron(1, miner.hotkey, miner.hotkey, "127.0.0.1",
                                                  port, 10.0, False)])
            response_id = await db.insert_response(session, run_id, miner.hotkey, 1)
        await set_paused(session_factory, True)
        commits = CommitRecorder()
        ctx = dataclasses.replace(
            pipeline_context(session_factory, tmp_path, clock=fixed_clock(QUERIED)),
            forecasts=commits)
        payload = ResponsePayload(run_id=run_id, response_id=response_id,
                                  miner_hotkey=miner.hotkey)
        await query_miner(ctx, payload, job_context(session_factory, 1, WeatherJob.QUERY_MINER))
        await poll_miner(ctx, payload, job_context(session_factory, 2, WeatherJob.POLL_MINER))
    async with session_factory() as session:
        response = await session.get_one(WeatherMinerResponse, response_id)
    assert miner.calls == ["initiate", "status"]
    assert response.status is S.FORECAST_READY and len(commits.committed) == 1

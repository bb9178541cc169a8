"""The daily run on the real queue: one run however many validators tick, late creation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from gaia.clock import VirtualClock
from gaia.database.validator_schema import WeatherForecastRun
from gaia.jobs.queue import JobQueue
from gaia.jobs.schema import ValidatorJob
from gaia.tasks.defined_tasks.weather.pipeline import orchestrator
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import RunCreatePayload
from gaia.tasks.defined_tasks.weather.pipeline.scheduler import PeriodicJob, Scheduler
from gaia.tasks.defined_tasks.weather.pipeline.timing import RunTiming
from gaia.tasks.defined_tasks.weather.pipeline.workers import all_policies
from gaia.tasks.defined_tasks.weather.states import RunMode, RunStatus
from tests.fixtures.pipeline import fixed_clock, job_context, pipeline_context


def at(hour: int, minute: int = 0, day: int = 28) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def scheduler(
    session_factory: async_sessionmaker, now: datetime, periodic: Sequence[PeriodicJob] = ()
) -> Scheduler:
    return Scheduler(session_factory, JobQueue(all_policies()), RunTiming(), fixed_clock(now),
                     periodic)


async def _jobs(session_factory: async_sessionmaker, job_type: str) -> list[ValidatorJob]:
    async with session_factory() as session:
        return list(await session.scalars(select(ValidatorJob).where(ValidatorJob.job_type == job_type)))


async def _run_create_jobs(
    session_factory: async_sessionmaker, jobs: list[ValidatorJob], root: Path
) -> None:
    """Run every run.create job's handler concurrently, as several workers would."""
    ctx = pipeline_context(session_factory, root)
    await asyncio.gather(*(
        orchestrator.create_run(ctx, RunCreatePayload.model_validate(job.payload),
                                job_context(session_factory, job.id, job.job_type))
        for job in jobs
    ))


async def test_nothing_is_due_before_the_schedule(session_factory: async_sessionmaker) -> None:
    assert await scheduler(session_factory, at(17, 59)).tick() == []


async def test_two_validators_at_the_tick_make_one_run(
    session_factory: async_sessionmaker, tmp_path: Path
) -> None:
    first, second = scheduler(session_factory, at(18)), scheduler(session_factory, at(18))
    keys = await asyncio.gather(first.tick(), second.tick())
    assert sorted(k for ks in keys for k in ks) == [f"{WeatherJob.RUN_CREATE}:2026-11-28"]
    jobs = await _jobs(session_factory, WeatherJob.RUN_CREATE)
    assert len(jobs) == 1
    # Even if two create jobs ran (a later tick after the first finished), one run results.
    await _run_create_jobs(session_factory, jobs * 2, tmp_path)
    async with session_factory() as session:
        runs = list(await session.scalars(select(WeatherForecastRun)))
    assert [(r.gfs_init_time, r.mode, r.status) for r in runs] == [
        (at(12), RunMode.LIVE, RunStatus.CREATED)
    ]
    assert runs[0].commit_deadline == at(21, 30)
    seeds = await _jobs(session_factory, WeatherJob.SEED)
    assert [j.singleton_key for j in seeds] == [f"{WeatherJob.SEED}:run={runs[0].id}"]
    assert await first.tick() == []  # the run exists: nothing more to do today


async def test_a_validator_started_late_still_creates_the_days_run(
    session_factory: async_sessionmaker,
) -> None:
    assert await scheduler(session_factory, at(19)).tick() == [f"{WeatherJob.RUN_CREATE}:2026-11-28"]
    job = (await _jobs(session_factory, WeatherJob.RUN_CREATE))[0]
    payload = RunCreatePayload.model_validate(job.payload)
    assert (payload.init_time, payload.mode) == (at(12), RunMode.LIVE)


async def test_after_the_commit_window_the_day_is_skipped(session_factory: async_sessionmaker) -> None:
    assert await scheduler(session_factory, at(22)).tick() == []


async def test_periodic_work_once_per_slot(session_factory: async_sessionmaker) -> None:
    every = [PeriodicJob("validator.metagraph_sync", timedelta(minutes=10))]
    keys = await asyncio.gather(*(
        scheduler(session_factory, at(10, minute), every).tick() for minute in (1, 4, 9)
    ))
    assert sorted(k for ks in keys for k in ks) == ["validator.metagraph_sync:2026-11-28T10:00:00"]
    async with session_factory.begin() as session:
        await session.execute(ValidatorJob.__table__.update().values(status="succeeded"))
    assert await scheduler(session_factory, at(10, 8), every).tick() == []
    assert await scheduler(session_factory, at(10, 12), every).tick() == [
        "validator.metagraph_sync:2026-11-28T10:10:00"
    ]
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(ValidatorJob)) == 2


async def test_the_scheduler_sleeps_on_its_clock_until_the_next_due_moment(
    session_factory: async_sessionmaker,
) -> None:
    """Started at 16:30 with hourly weights, it wakes at 17:00 (a slot) and at 18:00 (the run
    and a slot), and at no moment in between."""
    clock = VirtualClock(at(16, 30))
    hourly = [PeriodicJob("validator.set_weights", timedelta(hours=1))]
    sched = Scheduler(session_factory, JobQueue(all_policies(), clock), RunTiming(), clock, hourly)
    assert sched.next_due(at(16, 30)) == at(17)
    assert sched.next_due(at(17)) == at(18)
    stop = asyncio.Event()
    running = asyncio.create_task(sched.run(stop, max_sleep_s=86_400))
    for moment in (at(17), at(18)):
        await _sleeping_until(clock, moment)
        clock.advance_to(moment)
    await _sleeping_until(clock, at(19))
    stop.set()
    await asyncio.wait_for(running, 5)
    keys = sorted(job.singleton_key for job in [
        *await _jobs(session_factory, "validator.set_weights"),
        *await _jobs(session_factory, WeatherJob.RUN_CREATE)])
    assert keys == ["validator.set_weights:2026-11-28T16:00:00",
                    "validator.set_weights:2026-11-28T17:00:00",
                    "validator.set_weights:2026-11-28T18:00:00",
                    "weather.run.create:2026-11-28"]
    runs = await _jobs(session_factory, WeatherJob.RUN_CREATE)
    assert runs[0].run_at == at(18)  # due on the scheduler's clock, not the database's


async def _sleeping_until(clock: VirtualClock, moment: datetime) -> None:
    """Let the scheduler tick and go to sleep; it must be waiting for ``moment``."""
    for _ in range(500):
        if clock.next_wakeup() == moment:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the scheduler sleeps until {clock.next_wakeup()}, not {moment}")

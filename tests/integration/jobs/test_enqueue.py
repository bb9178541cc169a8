"""Enqueue in the caller's transaction, singleton keys, and the inspection helpers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from gaia.database.validator_schema import WeatherForecastRun
from gaia.jobs import (
    JobQueue,
    LiveSingletonExists,
    NewJob,
    cancel_job,
    job_counts,
    purge_finished,
    requeue_job,
    singleton_key,
)
from gaia.jobs.schema import JobStatus, ValidatorJob
from gaia.tasks.defined_tasks.weather.pipeline.job_types import RETRY_CONFIG, WeatherJob
from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG

QUEUE = JobQueue(RETRY_CONFIG)
SEED_KEY = singleton_key(WeatherJob.SEED, run=42)


async def jobs(session_factory) -> list[ValidatorJob]:
    async with session_factory() as session:
        return list((await session.scalars(select(ValidatorJob).order_by(ValidatorJob.id))).all())


async def test_enqueue_uses_the_policy_and_payload(session_factory):
    async with session_factory() as session, session.begin():
        job_id = await QUEUE.enqueue(
            session, WeatherJob.QUERY_MINER, {"run_id": 42, "miner_hotkey": "5F"},
            singleton_key=singleton_key(WeatherJob.QUERY_MINER, run=42, hotkey="5F"),
        )
    [job] = await jobs(session_factory)
    assert job.id == job_id
    assert (job.job_type, job.status, job.attempts) == ("weather.query_miner", JobStatus.QUEUED, 0)
    assert (job.max_attempts, job.timeout_s) == (3, 60)
    assert job.payload == {"run_id": 42, "miner_hotkey": "5F"}
    assert job.singleton_key == "weather.query_miner:run=42:hotkey=5F"


async def test_fifty_concurrent_enqueues_of_one_singleton_make_one_job(session_factory):
    async def enqueue_once(i: int) -> int | None:
        async with session_factory() as session, session.begin():
            return await QUEUE.enqueue(session, WeatherJob.SEED, {"run_id": 42, "i": i},
                                       singleton_key=SEED_KEY)

    ids = await asyncio.gather(*(enqueue_once(i) for i in range(50)))
    assert len([i for i in ids if i is not None]) == 1
    assert len(await jobs(session_factory)) == 1


async def test_singleton_key_is_free_again_once_the_job_finished(session_factory):
    async with session_factory() as session, session.begin():
        first = await QUEUE.enqueue(session, WeatherJob.SEED, {}, singleton_key=SEED_KEY)
        assert await QUEUE.enqueue(session, WeatherJob.SEED, {}, singleton_key=SEED_KEY) is None
        await session.execute(update(ValidatorJob).values(status=JobStatus.SUCCEEDED))
        second = await QUEUE.enqueue(session, WeatherJob.SEED, {}, singleton_key=SEED_KEY)
    assert first is not None and second is not None and second != first


async def test_rolled_back_transaction_leaves_neither_state_nor_job(session_factory):
    async with session_factory() as session:
        async with session.begin():
            run = WeatherForecastRun(
                gfs_init_time=datetime(2026, 11, 28, tzinfo=UTC),
                commit_deadline=datetime(2026, 11, 28, 6, tzinfo=UTC), grid_deg=GRID_DEG,
            )
            session.add(run)
            await session.flush()
            job_id = await QUEUE.enqueue(session, WeatherJob.SEED, {"run_id": run.id},
                                         singleton_key=singleton_key(WeatherJob.SEED, run=run.id))
            assert job_id is not None
            await session.rollback()
    async with session_factory() as session:
        assert (await session.scalar(select(text("count(*)")).select_from(WeatherForecastRun))) == 0
    assert await jobs(session_factory) == []


async def test_enqueue_many_skips_live_and_repeated_singletons_and_honours_run_at(session_factory):
    later = datetime.now(UTC) + timedelta(hours=1)
    async with session_factory() as session, session.begin():
        await QUEUE.enqueue(session, WeatherJob.SEED, {}, singleton_key=SEED_KEY)
        ids = await QUEUE.enqueue_many(session, [
            NewJob(WeatherJob.SEED, {}, SEED_KEY),
            NewJob(WeatherJob.POLL_MINER, {"miner_hotkey": "a"}),
            NewJob(WeatherJob.POLL_MINER, {"miner_hotkey": "b"}),
            NewJob(WeatherJob.ORCHESTRATE, {}, "weather.orchestrate:run=1"),
            NewJob(WeatherJob.ORCHESTRATE, {}, "weather.orchestrate:run=1"),
        ], run_at=later)
    assert len(ids) == 3
    polls = [j for j in await jobs(session_factory) if j.job_type == WeatherJob.POLL_MINER]
    assert [j.run_at for j in polls] == [later, later]
    assert [j.max_attempts for j in polls] == [10, 10]


async def test_enqueue_refuses_unknown_types_and_naive_times(session_factory):
    async with session_factory() as session, session.begin():
        with pytest.raises(KeyError, match="weather.nope"):
            await QUEUE.enqueue(session, "weather.nope", {})
        with pytest.raises(ValueError, match="timezone-aware"):
            await QUEUE.enqueue(session, WeatherJob.SEED, {}, run_at=datetime(2026, 1, 1))


async def test_counts_requeue_cancel_and_purge(session_factory):
    async with session_factory() as session, session.begin():
        failed = await QUEUE.enqueue(session, WeatherJob.SEED, {}, singleton_key=SEED_KEY)
        queued = await QUEUE.enqueue(session, WeatherJob.DAY1_SCORE, {})
        old = await QUEUE.enqueue(session, WeatherJob.DAY1_SCORE, {})
        await session.execute(update(ValidatorJob).where(ValidatorJob.id == failed).values(
            status=JobStatus.FAILED, attempts=6, finished_at=text("now()")))
        await session.execute(update(ValidatorJob).where(ValidatorJob.id == old).values(
            status=JobStatus.SUCCEEDED, finished_at=text("now() - interval '20 days'")))
    async with session_factory() as session, session.begin():
        assert await job_counts(session) == {
            ("weather.seed", JobStatus.FAILED): 1,
            ("weather.day1_score", JobStatus.QUEUED): 1,
            ("weather.day1_score", JobStatus.SUCCEEDED): 1,
        }
        assert await purge_finished(session, older_than_days=14) == 1
        assert await cancel_job(session, queued) is True
        assert await cancel_job(session, queued) is False
        assert await requeue_job(session, failed) is True
        assert await requeue_job(session, failed) is False
    by_id = {j.id: j for j in await jobs(session_factory)}
    assert set(by_id) == {failed, queued}
    assert (by_id[failed].status, by_id[failed].attempts, by_id[failed].finished_at) == (
        JobStatus.QUEUED, 0, None)
    assert by_id[queued].status is JobStatus.CANCELLED


async def test_requeue_refuses_while_a_live_job_holds_the_key(session_factory):
    async with session_factory() as session, session.begin():
        failed = await QUEUE.enqueue(session, WeatherJob.SEED, {}, singleton_key=SEED_KEY)
        await session.execute(update(ValidatorJob).values(status=JobStatus.FAILED))
        await QUEUE.enqueue(session, WeatherJob.SEED, {}, singleton_key=SEED_KEY)
    async with session_factory() as session, session.begin():
        with pytest.raises(LiveSingletonExists, match=f"job {failed}"):
            await requeue_job(session, failed)

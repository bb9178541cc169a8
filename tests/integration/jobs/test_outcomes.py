"""Handler outcomes through a real worker on the real queue, against RETRY_CONFIG."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select, text, update

from gaia.clock import VirtualClock
from gaia.jobs import (
    Invalid,
    JobContext,
    JobQueue,
    JobRegistry,
    NotReady,
    Retry,
    RetryPolicy,
    Worker,
    WorkerOptions,
    asyncpg_dsn,
    reap_expired,
)
from gaia.jobs.queue import queue_timing, wake_workers
from gaia.jobs.schema import JobStatus, ValidatorJob
from gaia.tasks.defined_tasks.weather.pipeline.job_types import RETRY_CONFIG, WeatherJob
from tests.integration.jobs.waiting import wait_for

UNTIL = datetime(2030, 1, 1, tzinfo=UTC)
START = datetime(2026, 3, 1, 12, tzinfo=UTC)  # the harness's virtual clock starts here


@pytest.fixture
async def give_ups(engine) -> AsyncIterator[None]:
    """The give-up hooks' record, made for one test and dropped after it, so the session's
    database keeps only the models' tables."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE give_ups (tag text, reason text, job_status_seen text)"))
    yield
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE give_ups"))


async def record_give_up(session, payload: dict[str, Any], reason: str) -> None:
    """Marks the subject failed; reads the job row to prove it shares the job's transaction."""
    seen = await session.scalar(
        text("SELECT status::text FROM validator_jobs WHERE payload->>'tag' = :tag"),
        {"tag": payload["tag"]},
    )
    await session.execute(text("INSERT INTO give_ups VALUES (:tag, :reason, :seen)"),
                          {"tag": payload["tag"], "reason": reason, "seen": seen})


class Harness:
    def __init__(self, database_url: str, session_factory) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.session_factory = session_factory
        self.registry = JobRegistry()
        self.clock = VirtualClock(START)  # due times follow it; leases stay on real time

    def register(self, job_type: str, handler, policy: RetryPolicy | None = None, **kw) -> None:
        policy = policy or RETRY_CONFIG[job_type]
        self.registry.register(job_type, handler, policy=policy, on_give_up=record_give_up, **kw)

    async def enqueue(self, job_type: str, payload: dict[str, Any]) -> int:
        async with self.session_factory() as session, session.begin():
            return await JobQueue(self.registry.policies(), self.clock).enqueue(
                session, job_type, payload)

    def worker(self, **options: Any) -> Worker:
        options = {"concurrency": 4, "idle_poll_s": 0.05, **options}
        return Worker(self.dsn, self.registry, self.session_factory, WorkerOptions(**options),
                      clock=self.clock)

    async def work(self, **options: Any) -> None:
        await self.worker(**options).run(until_idle=True)

    async def job(self, job_id: int) -> ValidatorJob:
        async with self.session_factory() as session:
            return (await session.scalars(select(ValidatorJob).where(ValidatorJob.id == job_id))).one()

    async def make_due(self, job_id: int) -> None:
        async with self.session_factory() as session, session.begin():
            await session.execute(
                update(ValidatorJob).where(ValidatorJob.id == job_id).values(run_at=self.clock()))

    async def rows(self, query: str) -> list[tuple]:
        async with self.session_factory() as session:
            return [tuple(r) for r in await session.execute(text(query))]


@pytest.fixture
def harness(database_url, session_factory, give_ups) -> Harness:
    return Harness(database_url, session_factory)


def delay_of(job: ValidatorJob) -> float:
    """The backoff the queue applied, counted on the harness's clock (which stands still)."""
    return (job.run_at - START).total_seconds()


async def test_retry_follows_query_miner_backoff_then_gives_up(harness):
    async def refused(payload, ctx: JobContext) -> None:
        raise Retry("connection refused")

    harness.register(WeatherJob.QUERY_MINER, refused)
    job_id = await harness.enqueue(WeatherJob.QUERY_MINER, {"tag": "q", "run_id": 1})
    seen = []
    for _ in range(2):
        await harness.work()
        job = await harness.job(job_id)
        seen.append((job.status, job.attempts, delay_of(job), job.last_error))
        await harness.make_due(job_id)
    assert seen == [(JobStatus.QUEUED, 1, 60, "connection refused"),
                    (JobStatus.QUEUED, 2, 300, "connection refused")]
    assert await harness.rows("SELECT * FROM give_ups") == []

    await harness.work()
    job = await harness.job(job_id)
    reason = "gave up after 3 attempts: connection refused"
    assert (job.status, job.attempts, job.last_error, job.locked_by) == (JobStatus.FAILED, 3, reason, None)
    assert job.finished_at is not None
    assert await harness.rows("SELECT * FROM give_ups") == [("q", reason, "failed")]


async def test_backoff_scale_shrinks_the_policy_delay(harness):
    async def refused(payload, ctx):
        raise Retry("502")

    harness.register(WeatherJob.DAY1_SCORE, refused)
    job_id = await harness.enqueue(WeatherJob.DAY1_SCORE, {"tag": "d"})
    await harness.work(backoff_scale=0.01)
    assert delay_of(await harness.job(job_id)) == pytest.approx(3.0)


async def test_not_ready_counts_attempts_when_the_policy_says_so(harness):
    async def running(payload, ctx):
        raise NotReady(UNTIL, "inference running")

    counted = RetryPolicy(10, (300,), timeout_s=30, max_timeout_s=120, not_ready_uses_attempt=True)
    harness.register("test.counted_wait", running, policy=counted)
    job_id = await harness.enqueue("test.counted_wait", {"tag": "p"})
    for attempt in range(1, 10):
        await harness.work()
        job = await harness.job(job_id)
        assert (job.status, job.attempts, job.run_at) == (JobStatus.QUEUED, attempt, UNTIL)
        await harness.make_due(job_id)
    await harness.work()
    job = await harness.job(job_id)
    reason = "still not ready after 10 attempts: inference running"
    assert (job.status, job.attempts, job.last_error) == (JobStatus.FAILED, 10, reason)
    assert await harness.rows("SELECT * FROM give_ups") == [("p", reason, "failed")]


@pytest.mark.parametrize(("job_type", "reason"), [
    (WeatherJob.ERA5_SCORE, "ERA5 not published"),
    (WeatherJob.POLL_MINER, "inference running"),  # polled to the deadline, not 10 times
])
async def test_not_ready_uses_no_attempt_for_waits_that_are_nobodys_fault(
    harness, job_type, reason
):
    async def waiting(payload, ctx):
        raise NotReady(UNTIL, reason)

    harness.register(job_type, waiting)
    job_id = await harness.enqueue(job_type, {"tag": "e"})
    for _ in range(RETRY_CONFIG[job_type].max_attempts + 2):
        await harness.work()
        job = await harness.job(job_id)
        assert (job.status, job.attempts, job.run_at) == (JobStatus.QUEUED, 0, UNTIL)
        assert job.last_error == f"not ready: {reason}"
        await harness.make_due(job_id)


async def test_invalid_fails_at_once_and_runs_the_hook(harness):
    async def bad_hash(payload, ctx):
        raise Invalid("manifest hash mismatch")

    harness.register(WeatherJob.DAY1_SCORE, bad_hash)
    job_id = await harness.enqueue(WeatherJob.DAY1_SCORE, {"tag": "i"})
    await harness.work()
    job = await harness.job(job_id)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)
    assert await harness.rows("SELECT * FROM give_ups") == [
        ("i", "invalid: manifest hash mismatch", "failed")]


async def test_unexpected_exception_is_a_retry_with_the_traceback(harness):
    async def buggy(payload, ctx):
        return 1 / 0

    harness.register(WeatherJob.QUERY_MINER, buggy)
    job_id = await harness.enqueue(WeatherJob.QUERY_MINER, {"tag": "b"})
    await harness.work()
    job = await harness.job(job_id)
    assert (job.status, job.attempts, delay_of(job)) == (JobStatus.QUEUED, 1, 60)
    assert "Traceback" in job.last_error and "ZeroDivisionError" in job.last_error


async def test_timeout_retries_with_a_doubled_capped_timeout(harness):
    timeouts = []

    async def slow(payload, ctx: JobContext) -> None:
        timeouts.append(ctx.timeout_s)
        await asyncio.sleep(60)

    harness.register("test.slow", slow, RetryPolicy(3, (0,), timeout_s=0.05, max_timeout_s=0.15))
    job_id = await harness.enqueue("test.slow", {"tag": "t"})
    await harness.work()
    job = await harness.job(job_id)
    assert timeouts == [0.05, 0.1, 0.15]
    assert (job.status, job.attempts, job.timeout_s) == (JobStatus.FAILED, 3, 0.15)
    assert job.last_error == "gave up after 3 attempts: handler timed out after 0.15 s"


async def test_typed_payload_and_context(harness):
    class Query(BaseModel):
        run_id: int
        miner_hotkey: str

    seen = []

    async def handler(payload: Query, ctx: JobContext) -> None:
        async with ctx.session_factory() as session:
            status = await session.scalar(
                text("SELECT status::text FROM validator_jobs WHERE id = :id"), {"id": ctx.job_id})
        seen.append((payload, ctx.job_type, ctx.attempt, ctx.max_attempts, status))

    harness.register(WeatherJob.QUERY_MINER, handler, payload_model=Query)
    good = await harness.enqueue(WeatherJob.QUERY_MINER, {"run_id": 7, "miner_hotkey": "5F"})
    bad = await harness.enqueue(WeatherJob.QUERY_MINER, {"tag": "bad", "run_id": "seven"})
    await harness.work()
    assert seen == [(Query(run_id=7, miner_hotkey="5F"), "weather.query_miner", 1, 3, "running")]
    assert (await harness.job(good)).status is JobStatus.SUCCEEDED
    failed = await harness.job(bad)
    assert failed.status is JobStatus.FAILED
    assert failed.last_error.startswith("invalid: bad payload for weather.query_miner")


async def test_failing_give_up_hook_still_fails_the_job(harness):
    async def invalid(payload, ctx):
        raise Invalid("wrong grid")

    async def broken_hook(session, payload, reason):
        raise RuntimeError("subject table is gone")

    harness.registry.register("test.broken", invalid, policy=RETRY_CONFIG[WeatherJob.DAY1_SCORE],
                              on_give_up=broken_hook)
    job_id = await harness.enqueue("test.broken", {})
    await harness.work()
    job = await harness.job(job_id)
    assert job.status is JobStatus.FAILED
    assert job.last_error.startswith("invalid: wrong grid; give-up hook failed: RuntimeError(")


async def test_reaper_requeues_expired_leases_and_fails_exhausted_ones(harness):
    async def never(payload, ctx):
        raise AssertionError("not run in this test")

    harness.register(WeatherJob.QUERY_MINER, never)
    alive = await harness.enqueue(WeatherJob.QUERY_MINER, {"tag": "alive"})
    expired = await harness.enqueue(WeatherJob.QUERY_MINER, {"tag": "expired"})
    exhausted = await harness.enqueue(WeatherJob.QUERY_MINER, {"tag": "exhausted"})
    async with harness.session_factory() as session, session.begin():
        running = {"status": JobStatus.RUNNING, "locked_by": "gone"}
        past = text("now() - interval '1 second'")
        await session.execute(update(ValidatorJob).where(ValidatorJob.id == alive).values(
            **running, attempts=1, lease_until=text("now() + interval '1 hour'")))
        await session.execute(update(ValidatorJob).where(ValidatorJob.id == expired).values(
            **running, attempts=1, lease_until=past))
        await session.execute(update(ValidatorJob).where(ValidatorJob.id == exhausted).values(
            **running, attempts=3, lease_until=past))

    result = await reap_expired(harness.session_factory, harness.registry, clock=harness.clock)
    assert (result.requeued, result.failed) == (1, 1)
    states = {i: ((j := await harness.job(i)).status, j.attempts) for i in (alive, expired, exhausted)}
    assert states == {alive: (JobStatus.RUNNING, 1), expired: (JobStatus.QUEUED, 1),
                      exhausted: (JobStatus.FAILED, 3)}
    reason = "gave up after 3 attempts: lease expired on gone"
    assert await harness.rows("SELECT * FROM give_ups") == [("exhausted", reason, "failed")]


async def test_due_times_follow_the_injected_clock_not_the_database(harness, engine):
    """A job due an hour ahead of the virtual clock waits, though the database's own time is
    years later; moving the clock and waking the workers runs it at once."""
    ran = []

    async def done(payload, ctx):
        ran.append(harness.clock())

    harness.register(WeatherJob.ORCHESTRATE, done)
    async with harness.session_factory() as session, session.begin():
        job_id = await JobQueue(harness.registry.policies(), harness.clock).enqueue(
            session, WeatherJob.ORCHESTRATE, {"run_id": 1}, run_at=START + timedelta(hours=1))
    worker = harness.worker(idle_poll_s=600)
    running = asyncio.create_task(worker.run())
    async with harness.session_factory() as session:
        timing = await queue_timing(session, harness.clock())
    assert (timing.running, timing.due, timing.next_run_at) == (0, 0, START + timedelta(hours=1))
    await asyncio.sleep(0.3)
    assert ran == [] and (await harness.job(job_id)).status is JobStatus.QUEUED

    harness.clock.advance(timedelta(hours=1))
    async with harness.session_factory() as session, session.begin():
        await wake_workers(session)
    await wait_for(engine, f"SELECT status::text FROM validator_jobs WHERE id = {job_id}",
                   lambda s: s == "succeeded", timeout_s=60)
    assert ran == [START + timedelta(hours=1)]
    assert worker.idle
    worker.stop()
    await running


async def test_idle_worker_wakes_on_notify(harness, engine):
    async def done(payload, ctx):
        return None

    harness.register(WeatherJob.ORCHESTRATE, done)
    worker = harness.worker(idle_poll_s=600)
    running = asyncio.create_task(worker.run())
    for run_id in (1, 2):  # after the first job the worker has found the queue empty and waits
        job_id = await harness.enqueue(WeatherJob.ORCHESTRATE, {"run_id": run_id})
        await wait_for(engine, f"SELECT status::text FROM validator_jobs WHERE id = {job_id}",
                       lambda s: s == "succeeded", timeout_s=120)
    worker.stop()
    await running


async def test_prefetch_never_runs_more_than_concurrency_handlers(harness):
    active, peak, done = 0, 0, []

    async def short(payload, ctx):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        done.append(payload["i"])

    harness.register(WeatherJob.ORCHESTRATE, short)
    for i in range(12):
        await harness.enqueue(WeatherJob.ORCHESTRATE, {"i": i})
    await harness.work(concurrency=2, prefetch=3)
    assert peak == 2
    assert sorted(done) == list(range(12))
    assert await harness.rows("SELECT status::text, attempts, count(*) FROM validator_jobs "
                              "GROUP BY 1, 2") == [("succeeded", 1, 12)]


async def test_stop_finishes_running_jobs_and_releases_prefetched_ones(harness, engine):
    started, release = asyncio.Event(), asyncio.Event()

    async def blocked(payload, ctx):
        started.set()
        await release.wait()

    harness.register(WeatherJob.ORCHESTRATE, blocked)
    ids = [await harness.enqueue(WeatherJob.ORCHESTRATE, {"i": i}) for i in range(3)]
    worker = harness.worker(concurrency=1, prefetch=2, shutdown_grace_s=60)
    running = asyncio.create_task(worker.run())
    await started.wait()
    held = await harness.rows("SELECT count(*) FROM validator_jobs WHERE status = 'running'")
    worker.stop()
    release.set()  # the running job finishes within the grace period
    await running
    assert held == [(3,)]
    states = [((j := await harness.job(i)).status, j.attempts, j.locked_by) for i in ids]
    assert states == [(JobStatus.SUCCEEDED, 1, None), (JobStatus.QUEUED, 0, None),
                      (JobStatus.QUEUED, 0, None)]


async def test_worker_purges_jobs_past_retention(harness, engine):
    async def done(payload, ctx):
        return None

    harness.register(WeatherJob.ORCHESTRATE, done)
    old, recent = [await harness.enqueue(WeatherJob.ORCHESTRATE, {}) for _ in range(2)]
    async with harness.session_factory() as session, session.begin():
        for job_id, age in ((old, "15 days"), (recent, "1 day")):
            await session.execute(update(ValidatorJob).where(ValidatorJob.id == job_id).values(
                status=JobStatus.SUCCEEDED, finished_at=text(f"now() - interval '{age}'")))
    worker = harness.worker(retention_days=14, reap_interval_s=0.05)
    running = asyncio.create_task(worker.run())
    await wait_for(engine, "SELECT count(*) FROM validator_jobs", lambda n: n == 1)
    worker.stop()
    await running
    assert (await harness.job(recent)).status is JobStatus.SUCCEEDED


async def test_heartbeat_keeps_a_long_job_leased(harness):
    starts = []

    async def long(payload, ctx: JobContext) -> None:
        starts.append(ctx.attempt)
        await asyncio.sleep(3)  # three leases long; the reaper looks every 0.1 s

    harness.register(WeatherJob.ORCHESTRATE, long)
    job_id = await harness.enqueue(WeatherJob.ORCHESTRATE, {})
    await harness.work(lease_s=1.0, reap_interval_s=0.1)
    job = await harness.job(job_id)
    assert starts == [1]
    assert (job.status, job.attempts, job.last_error) == (JobStatus.SUCCEEDED, 1, None)

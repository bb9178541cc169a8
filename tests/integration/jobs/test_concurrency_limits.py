"""Concurrency limit groups and waits outside the handler timeout, on a real worker and queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from gaia.jobs import (
    ConcurrencyLimit,
    JobContext,
    JobQueue,
    JobRegistry,
    NewJob,
    RetryPolicy,
    Worker,
    WorkerOptions,
    asyncpg_dsn,
    not_counted,
)
from gaia.jobs.schema import JobStatus
from gaia.tasks.defined_tasks.weather.pipeline.scoring_pool import ScoringPool
from tests.fixtures import scoring_tasks as tasks
from tests.integration.jobs.waiting import wait_for

SCORE, POLL = "test.score", "test.poll"
POLICY = RetryPolicy(3, (0.0,), timeout_s=60, max_timeout_s=60)
SHORT = RetryPolicy(1, (0.0,), timeout_s=0.5, max_timeout_s=0.5)
"""A timeout shorter than the waits of the tests below."""
PATIENCE_S = 30.0
"""How long a test waits for what should happen at once (the idle poll is an hour)."""


class Tally:
    """Handlers of ``test.score`` that run until the gate opens, counting how many run at once."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.running = 0
        self.most = 0

    async def score(self, payload: dict[str, Any], ctx: JobContext) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.gate.wait()
        finally:
            self.running -= 1


async def quick(payload: dict[str, Any], ctx: JobContext) -> None:
    return None


class Bench:
    def __init__(self, database_url: str, session_factory) -> None:  # type: ignore[no-untyped-def]
        self.dsn = asyncpg_dsn(database_url)
        self.session_factory = session_factory
        self.registry = JobRegistry()

    async def enqueue(self, job_type: str, n: int) -> None:
        async with self.session_factory() as session, session.begin():
            await JobQueue(self.registry.policies()).enqueue_many(
                session, [NewJob(job_type, {"n": i}) for i in range(n)])

    def worker(self, **options: Any) -> Worker:
        options = {"concurrency": 8, "idle_poll_s": 3600.0, **options}
        return Worker(self.dsn, self.registry, self.session_factory, WorkerOptions(**options))


@pytest.fixture
def bench(database_url, session_factory) -> Bench:  # type: ignore[no-untyped-def]
    return Bench(database_url, session_factory)


@pytest.fixture
async def running() -> AsyncIterator[list[tuple[Worker, asyncio.Task[None]]]]:
    """Workers started by a test, stopped (and their errors raised) at its end."""
    started: list[tuple[Worker, asyncio.Task[None]]] = []
    yield started
    for worker, task in started:
        worker.stop()
        await asyncio.wait_for(task, PATIENCE_S)


def start(started: list[tuple[Worker, asyncio.Task[None]]], worker: Worker) -> None:
    started.append((worker, asyncio.create_task(worker.run())))


def count(job_type: str, status: JobStatus) -> str:
    return (f"SELECT count(*) FROM validator_jobs WHERE job_type = '{job_type}' "
            f"AND status = '{status.value}'")


async def test_a_worker_runs_at_most_the_limit_of_a_group_however_many_are_queued(
    bench, engine, running,
):
    tally = Tally()
    bench.registry.register(SCORE, tally.score, policy=POLICY,
                            limit=ConcurrencyLimit("scoring", 2))
    await bench.enqueue(SCORE, 10)
    start(running, bench.worker(concurrency=8))

    await wait_for(engine, count(SCORE, JobStatus.RUNNING), lambda n: n == 2)
    await wait_for(engine, count(SCORE, JobStatus.QUEUED), lambda n: n == 8)
    tally.gate.set()
    await wait_for(engine, count(SCORE, JobStatus.SUCCEEDED), lambda n: n == 10)
    assert tally.most == 2


async def test_other_job_types_keep_flowing_while_a_group_is_full(bench, engine, running):
    tally = Tally()
    bench.registry.register(SCORE, tally.score, policy=POLICY,
                            limit=ConcurrencyLimit("scoring", 1))
    bench.registry.register(POLL, quick, policy=POLICY)
    await bench.enqueue(SCORE, 5)  # older than every poll job: first in line
    await bench.enqueue(POLL, 40)
    start(running, bench.worker(concurrency=4))

    await wait_for(engine, count(POLL, JobStatus.SUCCEEDED), lambda n: n == 40,
                   timeout_s=PATIENCE_S)
    assert await _scalar(engine, count(SCORE, JobStatus.RUNNING)) == 1
    assert await _scalar(engine, count(SCORE, JobStatus.QUEUED)) == 4
    assert tally.most == 1
    tally.gate.set()
    await wait_for(engine, count(SCORE, JobStatus.SUCCEEDED), lambda n: n == 5)


async def test_a_place_freed_in_a_full_group_is_refilled_without_waiting_for_the_idle_poll(
    bench, engine,
):
    bench.registry.register(SCORE, quick, policy=POLICY, limit=ConcurrencyLimit("scoring", 1))
    bench.registry.register(POLL, quick, policy=POLICY)
    await bench.enqueue(SCORE, 6)  # before the worker listens: no NOTIFY wakes it

    # until_idle returns once every group is drained; an idle poll would take an hour
    await asyncio.wait_for(bench.worker(concurrency=4).run(until_idle=True), PATIENCE_S)
    assert await _scalar(engine, count(SCORE, JobStatus.SUCCEEDED)) == 6


async def test_time_inside_not_counted_does_not_count_against_the_handler_timeout(bench, engine):
    async def waits_uncounted(payload: dict[str, Any], ctx: JobContext) -> None:
        async with not_counted():
            await asyncio.sleep(4 * SHORT.timeout_s)
        await asyncio.sleep(SHORT.timeout_s / 10)

    async def waits_counted(payload: dict[str, Any], ctx: JobContext) -> None:
        await asyncio.sleep(4 * SHORT.timeout_s)

    bench.registry.register(SCORE, waits_uncounted, policy=SHORT)
    bench.registry.register(POLL, waits_counted, policy=SHORT)
    await bench.enqueue(SCORE, 1)
    await bench.enqueue(POLL, 1)
    await asyncio.wait_for(bench.worker().run(until_idle=True), PATIENCE_S)

    assert await _scalar(engine, count(SCORE, JobStatus.SUCCEEDED)) == 1
    assert await _scalar(engine, "SELECT last_error FROM validator_jobs "
                                 f"WHERE job_type = '{POLL}'") == (
        "gave up after 1 attempts: handler timed out after 0.5 s")


@pytest.fixture
def pool() -> Iterator[ScoringPool]:
    pool = ScoringPool(1)
    yield pool
    pool.close()


async def test_a_job_waiting_for_a_busy_scoring_pool_past_its_timeout_then_scoring_succeeds(
    bench, engine, pool, tmp_path: Path, running,
):
    """The wait for a scoring process counts neither against the job's handler timeout nor
    against its task's own deadline, which starts when the process starts the task."""
    async def score(payload: dict[str, Any], ctx: JobContext) -> None:
        await pool.run(tasks.own_pid, deadline_s=SHORT.timeout_s)

    await pool.run(tasks.own_pid, deadline_s=None)  # the process is up: its start is not timed
    marker = tmp_path / "release"
    busy = asyncio.create_task(pool.run(tasks.pid_when, marker, deadline_s=None))
    bench.registry.register(SCORE, score, policy=SHORT)
    await bench.enqueue(SCORE, 1)
    start(running, bench.worker())
    await wait_for(engine, count(SCORE, JobStatus.RUNNING), lambda n: n == 1)
    await asyncio.sleep(4 * SHORT.timeout_s)  # queued behind the busy task past its timeout

    marker.touch()
    await busy
    await wait_for(engine, count(SCORE, JobStatus.SUCCEEDED), lambda n: n == 1,
                   timeout_s=PATIENCE_S)
    assert await _scalar(engine, f"SELECT attempts FROM validator_jobs WHERE job_type = '{SCORE}'") == 1


async def _scalar(engine, query: str) -> Any:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return (await conn.execute(text(query))).scalar()

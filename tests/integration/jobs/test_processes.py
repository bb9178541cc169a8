"""Real worker processes sharing one queue: exactly-once handling, SIGKILL and SIGTERM."""

from __future__ import annotations

import signal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gaia.jobs import JobQueue, NewJob
from tests.integration.jobs.waiting import wait_exit, wait_for
from tests.integration.jobs.worker_proc import JOB_TYPE, POLICY

QUEUE = JobQueue({JOB_TYPE: POLICY})


async def enqueue(engine: AsyncEngine, payloads: list[dict]) -> list[int]:
    async with engine.begin() as conn:
        return await QUEUE.enqueue_many(conn, [NewJob(JOB_TYPE, p) for p in payloads])


async def rows(engine: AsyncEngine, query: str) -> list[tuple]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(query))]


async def test_four_processes_handle_each_job_exactly_once(engine, side_tables, spawn_worker):
    workers = [spawn_worker("--concurrency", "4") for _ in range(4)]
    for batch in range(4):
        await enqueue(engine, [{"key": f"{batch}-{i}"} for i in range(500)])
    await wait_for(
        engine, "SELECT count(*) FROM validator_jobs WHERE status = 'succeeded'",
        lambda n: n == 2000, timeout_s=240,
    )
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    assert [await wait_exit(proc) for proc in workers] == [0, 0, 0, 0]

    assert await rows(engine, "SELECT count(*), min(runs), max(runs) FROM job_effects") == [(2000, 1, 1)]
    assert await rows(engine, "SELECT count(*), count(DISTINCT job_id) FROM job_starts") == [(2000, 2000)]
    assert await rows(engine, "SELECT status::text, min(attempts), max(attempts), count(*) "
                              "FROM validator_jobs GROUP BY status") == [("succeeded", 1, 1, 2000)]


async def test_sigkilled_worker_loses_nothing(engine, side_tables, spawn_worker):
    doomed = spawn_worker("--lease", "1")
    [job_id] = await enqueue(engine, [{"key": "k", "first_sleep": 600}])
    await wait_for(engine, "SELECT count(*) FROM job_starts", lambda n: n == 1)
    doomed.send_signal(signal.SIGKILL)
    assert await wait_exit(doomed) == -signal.SIGKILL

    spawn_worker("--lease", "1")
    await wait_for(engine, f"SELECT status::text FROM validator_jobs WHERE id = {job_id}",
                   lambda s: s == "succeeded")
    assert await rows(engine, "SELECT key, runs FROM job_effects") == [("k", 1)]
    assert await rows(engine, "SELECT attempt FROM job_starts ORDER BY attempt") == [(1,), (2,)]
    [(attempts, last_error)] = await rows(
        engine, f"SELECT attempts, last_error FROM validator_jobs WHERE id = {job_id}")
    assert attempts == 2
    assert "lease expired" in last_error


async def test_sigterm_stops_claiming_and_lets_the_running_job_finish(engine, side_tables, spawn_worker):
    [first] = await enqueue(engine, [{"key": "first", "sleep": 3}])
    later = await enqueue(engine, [{"key": "second"}, {"key": "third"}])
    proc = spawn_worker("--concurrency", "1", "--grace", "60")
    await wait_for(engine, "SELECT count(*) FROM job_starts", lambda n: n == 1)
    proc.send_signal(signal.SIGTERM)
    assert await wait_exit(proc) == 0

    assert await rows(engine, "SELECT job_id FROM job_starts") == [(first,)]
    assert await rows(engine, "SELECT key, runs FROM job_effects") == [("first", 1)]
    statuses = await rows(engine, "SELECT id, status::text, attempts FROM validator_jobs ORDER BY id")
    assert statuses == [(first, "succeeded", 1), (later[0], "queued", 0), (later[1], "queued", 0)]


async def test_sigterm_past_grace_releases_the_job_without_counting_it(engine, side_tables, spawn_worker):
    [job_id] = await enqueue(engine, [{"key": "slow", "sleep": 600}])
    proc = spawn_worker("--grace", "0.2")
    await wait_for(engine, "SELECT count(*) FROM job_starts", lambda n: n == 1)
    proc.send_signal(signal.SIGTERM)
    assert await wait_exit(proc) == 0

    [(status, attempts, locked_by, error)] = await rows(
        engine, f"SELECT status::text, attempts, locked_by, last_error FROM validator_jobs WHERE id = {job_id}")
    assert (status, attempts, locked_by) == ("queued", 0, None)
    assert "released unfinished at shutdown" in error
    assert await rows(engine, "SELECT count(*) FROM job_effects") == [(0,)]

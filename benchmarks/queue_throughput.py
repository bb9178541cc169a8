"""No-op jobs per second through gaia.jobs: enqueue, claim, complete.

For 1, 4 and 16 concurrent handlers in one worker process: enqueue N jobs in one batch, then
time the worker until every job has succeeded (claims, leases, attempts and completions all
written). Each run is interleaved with the TARGETS.md anchor "bare asyncpg, one connection per
handler, FOR UPDATE SKIP LOCKED, one job per claim" on the same table, so both see the same
load on a shared machine. Also times enqueueing N jobs one transaction each. Median of R runs.

    python benchmarks/queue_throughput.py [--server-url postgresql://postgres@127.0.0.1:5432/postgres]
                                          [--handlers 1 4 16] [--prefetch 0] [--jobs 5000]

A scratch database is created on the server and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
import uuid
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from gaia.database.base import Base
from gaia.jobs import JobContext, JobQueue, JobRegistry, NewJob, RetryPolicy, Worker, WorkerOptions
from gaia.jobs.queue import asyncpg_dsn
from gaia.jobs.schema import ValidatorJob

JOB_TYPE = "bench.noop"
POLICY = RetryPolicy(3, (1.0,), timeout_s=60, max_timeout_s=60)

BARE_CLAIM = """
    UPDATE validator_jobs SET status = 'running', attempts = attempts + 1
    WHERE id = (SELECT id FROM validator_jobs WHERE status = 'queued'
                ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id
"""
BARE_COMPLETE = "UPDATE validator_jobs SET status = 'succeeded', finished_at = now() WHERE id = $1"


async def noop(payload: dict[str, Any], ctx: JobContext) -> None:
    return None


async def _admin(server_url: str, statement: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _fill(engine: AsyncEngine, queue: JobQueue, n: int) -> float:
    """Empty the table and enqueue ``n`` jobs in one statement; returns jobs/s of the enqueue."""
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE validator_jobs RESTART IDENTITY"))
    jobs = [NewJob(JOB_TYPE, {"i": i}) for i in range(n)]
    start = time.perf_counter()
    async with engine.begin() as conn:
        await queue.enqueue_many(conn, jobs)
    return n / (time.perf_counter() - start)


async def _check_done(engine: AsyncEngine, n: int) -> None:
    async with engine.connect() as conn:
        done = (await conn.execute(text(
            "SELECT count(*) FROM validator_jobs WHERE status = 'succeeded'"))).scalar_one()
    if done != n:
        raise RuntimeError(f"expected {n} succeeded jobs, found {done}")


async def run_ours(engine: AsyncEngine, dsn: str, registry: JobRegistry, options: WorkerOptions,
                   n: int) -> tuple[float, float]:
    """Jobs per second, and the worker process's CPU microseconds per job."""
    worker = Worker(dsn, registry, async_sessionmaker(engine, expire_on_commit=False), options)
    start, cpu = time.perf_counter(), time.process_time()
    await worker.run(until_idle=True)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    await _check_done(engine, n)
    return n / elapsed, cpu / n * 1e6


async def run_bare(engine: AsyncEngine, dsn: str, handlers: int, n: int) -> float:
    """The anchor: each handler its own connection, claim one job, complete it, repeat."""
    conns = [await asyncpg.connect(dsn) for _ in range(handlers)]

    async def loop(conn: asyncpg.Connection) -> None:
        while (job_id := await conn.fetchval(BARE_CLAIM)) is not None:
            await conn.execute(BARE_COMPLETE, job_id)

    try:
        start = time.perf_counter()
        await asyncio.gather(*(loop(c) for c in conns))
        elapsed = time.perf_counter() - start
    finally:
        for conn in conns:
            await conn.close()
    await _check_done(engine, n)
    return n / elapsed


async def enqueue_one_by_one(engine: AsyncEngine, queue: JobQueue, n: int) -> float:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    start = time.perf_counter()
    for i in range(n):
        async with factory() as session, session.begin():
            await queue.enqueue(session, JOB_TYPE, {"i": i})
    return n / (time.perf_counter() - start)


def _fmt(rates: list[float]) -> str:
    return f"{statistics.median(rates):>7,.0f} (runs {', '.join(f'{r:,.0f}' for r in rates)})"


async def bench_handlers(engine: AsyncEngine, dsn: str, registry: JobRegistry, queue: JobQueue,
                         options: WorkerOptions, n: int, repeats: int) -> None:
    ours, cpus, bare, enqueues, loads = [], [], [], [], []
    for _ in range(repeats):
        enqueues.append(await _fill(engine, queue, n))
        rate, cpu = await run_ours(engine, dsn, registry, options, n)
        ours.append(rate)
        cpus.append(cpu)
        await _fill(engine, queue, n)
        bare.append(await run_bare(engine, dsn, options.concurrency, n))
        loads.append(os.getloadavg()[0])
    print(f"{options.concurrency:>2} handlers, prefetch {options.prefetch}: gaia.jobs {_fmt(ours)} "
          f"jobs/s, worker CPU {statistics.median(cpus):.0f} us/job | bare asyncpg {_fmt(bare)} "
          f"| batch enqueue {statistics.median(enqueues):,.0f} jobs/s | load average "
          f"{min(loads):.1f}-{max(loads):.1f}")


async def main(args: argparse.Namespace) -> None:
    name = f"gaia_bench_queue_{uuid.uuid4().hex[:8]}"
    await _admin(args.server_url, f'CREATE DATABASE "{name}"')
    url = make_url(args.server_url).set(drivername="postgresql+asyncpg", database=name)
    db_url = url.render_as_string(hide_password=False)
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all, tables=[ValidatorJob.__table__])
        registry = JobRegistry()
        registry.register(JOB_TYPE, noop, policy=POLICY)
        queue = JobQueue(registry.policies())
        for handlers in args.handlers:
            options = WorkerOptions(concurrency=handlers, prefetch=args.prefetch, idle_poll_s=0.05)
            await bench_handlers(engine, asyncpg_dsn(db_url), registry, queue, options,
                                 args.jobs, args.repeats)
        if not args.skip_single_enqueue:
            singles = []
            for _ in range(args.repeats):
                await _fill(engine, queue, 0)
                singles.append(await enqueue_one_by_one(engine, queue, args.jobs))
            print(f"enqueue one job per transaction (SQLAlchemy session): {_fmt(singles)} jobs/s")
    finally:
        await engine.dispose()
        await _admin(args.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--handlers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--prefetch", type=int, default=0, help="jobs claimed ahead of free slots")
    parser.add_argument("--skip-single-enqueue", action="store_true")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parser.parse_args()))

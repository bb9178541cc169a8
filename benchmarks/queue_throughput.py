"""No-op jobs per second through gaia.jobs: enqueue, claim, complete.

For 1, 4 and 16 concurrent handlers in one worker process: enqueue N jobs in one batch, then
time the worker until every job has succeeded (claims, leases, attempts and completions all
written). Also times enqueueing N jobs one transaction each. Median of R runs.

    python benchmarks/queue_throughput.py [--server-url postgresql://postgres@127.0.0.1:5432/postgres]

A scratch database is created on the server and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
import uuid
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from gaia.database.validator_schema import Base, ValidatorJob
from gaia.jobs import JobContext, JobQueue, JobRegistry, NewJob, RetryPolicy, Worker, WorkerOptions
from gaia.jobs.queue import asyncpg_dsn

JOB_TYPE = "bench.noop"
POLICY = RetryPolicy(3, (1.0,), timeout_s=60, max_timeout_s=60)


async def noop(payload: dict[str, Any], ctx: JobContext) -> None:
    return None


async def _admin(server_url: str, statement: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _fresh_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE validator_jobs RESTART IDENTITY"))


async def enqueue_batch(engine: AsyncEngine, queue: JobQueue, n: int) -> float:
    jobs = [NewJob(JOB_TYPE, {"i": i}) for i in range(n)]
    start = time.perf_counter()
    async with engine.begin() as conn:
        await queue.enqueue_many(conn, jobs)
    return n / (time.perf_counter() - start)


async def enqueue_one_by_one(engine: AsyncEngine, queue: JobQueue, n: int) -> float:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    start = time.perf_counter()
    for i in range(n):
        async with factory() as session, session.begin():
            await queue.enqueue(session, JOB_TYPE, {"i": i})
    return n / (time.perf_counter() - start)


async def process(engine: AsyncEngine, dsn: str, registry: JobRegistry, handlers: int, n: int) -> float:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    worker = Worker(dsn, registry, factory, WorkerOptions(concurrency=handlers, idle_poll_s=0.05))
    start = time.perf_counter()
    await worker.run(until_idle=True)
    elapsed = time.perf_counter() - start
    async with engine.connect() as conn:
        done = (await conn.execute(text(
            "SELECT count(*) FROM validator_jobs WHERE status = 'succeeded'"))).scalar_one()
    if done != n:
        raise RuntimeError(f"expected {n} succeeded jobs, found {done}")
    return n / elapsed


async def main(server_url: str, n: int, repeats: int, handler_counts: list[int]) -> None:
    name = f"gaia_bench_queue_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(drivername="postgresql+asyncpg", database=name)
    db_url = url.render_as_string(hide_password=False)
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all, tables=[ValidatorJob.__table__])
        registry = JobRegistry()
        registry.register(JOB_TYPE, noop, policy=POLICY)
        queue = JobQueue(registry.policies())
        dsn = asyncpg_dsn(db_url)
        for handlers in handler_counts:
            rates, enqueue_rates = [], []
            for _ in range(repeats):
                await _fresh_table(engine)
                enqueue_rates.append(await enqueue_batch(engine, queue, n))
                rates.append(await process(engine, dsn, registry, handlers, n))
            print(f"{handlers:>2} handlers: {statistics.median(rates):>8,.0f} jobs/s processed "
                  f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}); "
                  f"batch enqueue {statistics.median(enqueue_rates):,.0f} jobs/s")
        singles = []
        for _ in range(repeats):
            await _fresh_table(engine)
            singles.append(await enqueue_one_by_one(engine, queue, n))
        print(f"enqueue one job per transaction: {statistics.median(singles):,.0f} jobs/s "
              f"(runs: {', '.join(f'{r:,.0f}' for r in singles)})")
    finally:
        await engine.dispose()
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--handlers", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.server_url, args.jobs, args.repeats, args.handlers))

"""A worker process for the queue's process tests.

    python -m tests.integration.jobs.worker_proc DATABASE_URL [--concurrency N] [--lease S] [--grace S]

Handles ``test.record``: records the start in ``job_starts``, sleeps ``payload["sleep"]``
seconds (``payload["first_sleep"]`` on attempt 1 when given), then records the effect in
``job_effects`` keyed by ``payload["key"]``, counting runs, so a job handled twice shows up.
Stops gracefully on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from gaia.jobs import JobContext, JobRegistry, RetryPolicy, Worker, WorkerOptions, stop_on_signals
from gaia.jobs.queue import asyncpg_dsn

JOB_TYPE = "test.record"
POLICY = RetryPolicy(3, (0.0,), timeout_s=120, max_timeout_s=120)

SIDE_TABLES = (
    "CREATE TABLE job_starts (job_id bigint, attempt int, pid int)",
    "CREATE TABLE job_effects (key text PRIMARY KEY, job_id bigint, pid int, runs int)",
)


async def record(payload: dict[str, Any], ctx: JobContext) -> None:
    async with ctx.session_factory() as session, session.begin():
        await session.execute(
            text("INSERT INTO job_starts VALUES (:id, :attempt, :pid)"),
            {"id": ctx.job_id, "attempt": ctx.attempt, "pid": os.getpid()},
        )
    sleep = payload.get("first_sleep") if ctx.attempt == 1 else None
    await asyncio.sleep(sleep if sleep is not None else payload.get("sleep", 0.0))
    async with ctx.session_factory() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO job_effects VALUES (:key, :id, :pid, 1) "
                "ON CONFLICT (key) DO UPDATE SET runs = job_effects.runs + 1"
            ),
            {"key": payload["key"], "id": ctx.job_id, "pid": os.getpid()},
        )


def registry() -> JobRegistry:
    registry = JobRegistry()
    registry.register(JOB_TYPE, record, policy=POLICY)
    return registry


async def main(url: str, options: WorkerOptions) -> None:
    engine = create_async_engine(url, pool_size=options.concurrency)
    try:
        worker = Worker(
            asyncpg_dsn(url), registry(), async_sessionmaker(engine, expire_on_commit=False), options
        )
        stop_on_signals(worker)
        await worker.run()
    finally:
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--grace", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(process)d %(levelname)s %(message)s")
    opts = WorkerOptions(
        concurrency=args.concurrency, lease_s=args.lease, shutdown_grace_s=args.grace, idle_poll_s=0.2
    )
    asyncio.run(main(args.url, opts))

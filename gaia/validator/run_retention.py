"""Retention of the validator's history and this host's GFS message cache.

``validator.retention`` is a periodic job (once per :data:`PURGE_EVERY` slot): it purges the
finished runs whose last moment is older than ``validator.run_retention_days`` with their
responses, scores and finished jobs, in transactions of at most
``validator.retention_batch_rows`` rows (:mod:`gaia.validator.database.run_purge` says what
is purgeable: never a run still in progress, one a live job names, or one the weights
window reads), then prunes the GFS message cache of the host whose worker runs it to
``data.gfs_cache_max_gb`` / ``data.gfs_cache_max_age_days``. Running it twice changes
nothing more; ``python -m gaia.validator.admin purge --dry-run`` shows what it would remove.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.clock import Now
from gaia.config import Settings, ValidatorSettings
from gaia.jobs.policy import RetryPolicy
from gaia.jobs.registry import JobContext
from gaia.tasks.defined_tasks.weather.data import gfs_cache
from gaia.tasks.defined_tasks.weather.pipeline.payloads import PeriodicPayload
from gaia.validator.database import run_purge

RETENTION = "validator.retention"
PURGE_EVERY = timedelta(hours=1)
POLICIES = {RETENTION: RetryPolicy(3, (300, 900), timeout_s=3600, max_timeout_s=4 * 3600)}


@dataclass(frozen=True)
class RunRetention:
    keep: timedelta
    weights_window_runs: int
    batch_rows: int

    def __post_init__(self) -> None:
        if self.keep <= timedelta(0) or self.weights_window_runs < 1 or self.batch_rows < 1:
            raise ValueError(f"retention needs a positive period, window and batch: {self}")

    @classmethod
    def of(cls, validator: ValidatorSettings) -> RunRetention:
        return cls(timedelta(days=validator.run_retention_days), validator.weights_window_runs,
                   validator.retention_batch_rows)

    def cutoff(self, now: datetime) -> datetime:
        return now - self.keep


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    deleted: dict[str, int]  # rows per table
    transactions: int

    def summary(self) -> str:
        rows = ", ".join(f"{table} {n}" for table, n in self.deleted.items())
        return (f"purged runs finished before {self.cutoff:%Y-%m-%d %H:%M} UTC: {rows} "
                f"({self.transactions} transactions)")


async def plan_purge(
    session_factory: async_sessionmaker[AsyncSession], retention: RunRetention, now: datetime,
) -> run_purge.PurgePlan:
    async with session_factory() as session:
        return await run_purge.plan(session, retention.cutoff(now), retention.weights_window_runs)


async def purge_runs(
    session_factory: async_sessionmaker[AsyncSession], retention: RunRetention, now: datetime,
) -> PurgeReport:
    """Purge what is purgeable at ``now``, one bounded transaction at a time."""
    cutoff = retention.cutoff(now)
    deleted = dict.fromkeys(run_purge.TABLES, 0)
    transactions = 0
    while True:
        async with session_factory.begin() as session:
            step = await run_purge.purge_step(
                session, cutoff, retention.weights_window_runs, retention.batch_rows)
        if step is None or not step[1]:
            return PurgeReport(cutoff, deleted, transactions)
        deleted[step[0]] += step[1]
        transactions += 1


@dataclass(frozen=True)
class RetentionContext:
    session_factory: async_sessionmaker[AsyncSession]
    retention: RunRetention
    gfs_cache_dir: Path
    gfs_bound: gfs_cache.CacheBound
    clock: Now

    @classmethod
    def of(cls, settings: Settings, session_factory: async_sessionmaker[AsyncSession],
           clock: Now) -> RetentionContext:
        return cls(session_factory, RunRetention.of(settings.validator),
                   settings.data.cache_dir.expanduser(), gfs_cache.CacheBound.of(settings.data),
                   clock)


async def retain(ctx: RetentionContext, payload: PeriodicPayload, job: JobContext) -> None:
    """The periodic job: purge old runs, then bound this host's GFS cache."""
    now = ctx.clock()
    report = await purge_runs(ctx.session_factory, ctx.retention, now)
    job.log.info("%s", report.summary())
    pruned = await asyncio.to_thread(gfs_cache.prune, ctx.gfs_cache_dir, ctx.gfs_bound, now)
    job.log.info("%s", pruned.summary())

"""Run retention on a real database: what goes, what stays, in bounded transactions."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from gaia.clock import VirtualClock
from gaia.database.validator_schema import (
    WeatherForecastRun,
    WeatherMinerResponse,
    WeatherMinerScore,
)
from gaia.jobs import JobQueue, JobRegistry, Worker, WorkerOptions, asyncpg_dsn
from gaia.jobs.schema import JobStatus, ValidatorJob
from gaia.tasks.defined_tasks.weather.data import gfs_cache
from gaia.tasks.defined_tasks.weather.data.gfs_cache import CacheBound
from gaia.tasks.defined_tasks.weather.pipeline.payloads import PeriodicPayload
from gaia.tasks.defined_tasks.weather.pipeline.scheduler import PeriodicJob, Scheduler
from gaia.tasks.defined_tasks.weather.pipeline.timing import (
    RunTiming,
    floor_to_cycle,
    periodic_slot,
)
from gaia.tasks.defined_tasks.weather.pipeline.workers import all_policies
from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG
from gaia.tasks.defined_tasks.weather.scoring.records import ScoreKind
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunMode, RunStatus
from gaia.validator.admin_purge import purge_command
from gaia.validator.database import run_purge
from gaia.validator.database import validator_database_manager as db
from gaia.validator.run_retention import (
    POLICIES,
    PURGE_EVERY,
    RETENTION,
    RetentionContext,
    RunRetention,
    plan_purge,
    purge_runs,
    retain,
)
from tests.fixtures.database import truncate_all
from tests.fixtures.miner import REPO_ROOT
from tests.integration.jobs.waiting import wait_for

NOW = datetime(2026, 12, 1, 0, tzinfo=UTC)
KEEP = RunRetention(keep=timedelta(days=90), weights_window_runs=2, batch_rows=1000)
HOTKEYS = ("5Alpha", "5Beta")
SCORES_PER_MINER = 3
S = MinerResponseStatus


@dataclass(frozen=True)
class Run:
    """One run row to insert: its init this many days before NOW, finished that many."""

    init_days_ago: float
    status: RunStatus = RunStatus.COMPLETED
    completed_days_ago: float | None = None
    mode: RunMode = RunMode.LIVE
    live_job: bool = False
    finished_jobs: int = 1
    responses: tuple[str, ...] = HOTKEYS


async def _insert(factory: async_sessionmaker, run: Run, now: datetime = NOW) -> int:
    init = now - timedelta(days=run.init_days_ago)
    init = init.replace(hour=init.hour - init.hour % 6, minute=0, second=0, microsecond=0)
    completed = (None if run.completed_days_ago is None
                 else now - timedelta(days=run.completed_days_ago))
    async with factory.begin() as session:
        run_id = await session.scalar(insert(WeatherForecastRun).values(
            gfs_init_time=init, mode=run.mode, status=run.status, completed_at=completed,
            commit_deadline=init + timedelta(hours=9), grid_deg=GRID_DEG,
        ).returning(WeatherForecastRun.id))
        for uid, hotkey in enumerate(run.responses):
            await session.execute(insert(WeatherMinerResponse).values(
                run_id=run_id, miner_hotkey=hotkey, miner_uid=uid, status=S.ERA5_SCORED,
                created_at=init + timedelta(hours=6)))
            await session.execute(insert(WeatherMinerScore).values([
                {"run_id": run_id, "miner_hotkey": hotkey, "kind": ScoreKind.ROLLUP,
                 "variable": "all", "level": 0, "lead_hours": lead, "metric": "score",
                 "value": 0.5} for lead in range(SCORES_PER_MINER)]))
        await _jobs(session, run_id, run)
    return run_id


async def _jobs(session, run_id: int, run: Run) -> None:  # noqa: ANN001
    rows = [{"status": JobStatus.SUCCEEDED, "finished_at": NOW - timedelta(days=200)}
            ] * run.finished_jobs
    if run.live_job:
        rows.append({"status": JobStatus.QUEUED, "finished_at": None})
    for n, row in enumerate(rows):
        await session.execute(insert(ValidatorJob).values(
            job_type="weather.era5_score", payload={"run_id": run_id, "response_id": n},
            singleton_key=f"weather.era5_score:run={run_id}:n={n}", max_attempts=5,
            timeout_s=60, **row))


async def _counts(factory: async_sessionmaker) -> dict[str, int]:
    async with factory() as session:
        return {model.__tablename__: int(await session.scalar(
            select(func.count()).select_from(model)) or 0)
            for model in (WeatherForecastRun, WeatherMinerResponse, WeatherMinerScore,
                          ValidatorJob)}


async def _run_ids(factory: async_sessionmaker) -> set[int]:
    async with factory() as session:
        return set(await session.scalars(select(WeatherForecastRun.id)))


async def test_only_finished_runs_outside_the_window_go(
    session_factory: async_sessionmaker,
) -> None:
    window_runs = [await _insert(session_factory, Run(1 + day, RunStatus.AWAITING_ERA5))
                   for day in range(2)]
    gone = [await _insert(session_factory, Run(120, completed_days_ago=100)),
            await _insert(session_factory, Run(200, RunStatus.ERROR, completed_days_ago=170)),
            await _insert(session_factory, Run(300))]  # never completed_at: its init counts
    kept = [
        await _insert(session_factory, Run(95, completed_days_ago=80)),  # finished recently
        await _insert(session_factory, Run(150, RunStatus.AWAITING_ERA5)),  # not finished
        await _insert(session_factory, Run(140, RunStatus.SCORING_ERA5)),
        await _insert(session_factory, Run(130, completed_days_ago=100, live_job=True)),
        await _insert(session_factory, Run(400, completed_days_ago=5, mode=RunMode.HINDCAST)),
    ]
    before = await _counts(session_factory)
    report = await purge_runs(session_factory, KEEP, NOW)
    assert await _run_ids(session_factory) == set(window_runs + kept)
    per_run = {run_purge.RUNS: 1, run_purge.RESPONSES: 2, run_purge.SCORES: 2 * SCORES_PER_MINER,
               run_purge.JOBS: 1}
    assert report.deleted == {table: 3 * n for table, n in per_run.items()}
    after = await _counts(session_factory)
    assert {t: before[t] - after[t] for t in before} == report.deleted
    async with session_factory() as session:
        left = set(await session.scalars(select(WeatherMinerScore.run_id)))
        live = await session.scalar(select(ValidatorJob).where(
            ValidatorJob.status == JobStatus.QUEUED))
    assert left == set(window_runs + kept) and not left & set(gone)
    assert live is not None and live.payload["run_id"] == kept[3]  # untouched


async def test_a_second_purge_changes_nothing(session_factory: async_sessionmaker) -> None:
    for days in (100, 110, 120):
        await _insert(session_factory, Run(days, completed_days_ago=days - 5))
    first = await purge_runs(session_factory, KEEP, NOW)
    second = await purge_runs(session_factory, KEEP, NOW)
    assert first.deleted[run_purge.RUNS] == 1  # two of the three are the weights window's
    assert second.transactions == 0 and set(second.deleted.values()) == {0}


async def test_the_weights_window_stays_however_old(session_factory: async_sessionmaker) -> None:
    """A validator that was down for months keeps the runs its weights still read."""
    ids = [await _insert(session_factory, Run(200 + day, completed_days_ago=180 + day))
           for day in range(4)]
    hindcast = await _insert(session_factory, Run(500, completed_days_ago=300,
                                                  mode=RunMode.HINDCAST))
    async with session_factory() as session:
        window_before = [r.run_id for r in await db.latest_scored_runs(session, 2)]
    await purge_runs(session_factory, KEEP, NOW)
    async with session_factory() as session:
        window_after = [r.run_id for r in await db.latest_scored_runs(session, 2)]
    assert window_before == window_after == ids[:2]  # the newest two
    assert await _run_ids(session_factory) == set(ids[:2])
    assert hindcast not in await _run_ids(session_factory)  # hindcasts never feed weights


@dataclass
class Transactions:
    """Rows each committed transaction on an engine deleted (from the server's row counts)."""

    deleted: list[int] = field(default_factory=list)
    current: int = 0

    def watch(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine
        event.listen(sync, "begin", self._begin)
        event.listen(sync, "after_cursor_execute", self._executed)
        event.listen(sync, "commit", self._commit)

    def _begin(self, conn) -> None:  # noqa: ANN001
        self.current = 0

    def _executed(self, conn, cursor, statement, *args) -> None:  # noqa: ANN001, ANN002
        if statement.lstrip().upper().startswith("DELETE"):
            self.current += cursor.rowcount

    def _commit(self, conn) -> None:  # noqa: ANN001
        if self.current:
            self.deleted.append(self.current)


async def test_each_transaction_deletes_at_most_a_batch(
    engine: AsyncEngine, session_factory: async_sessionmaker,
) -> None:
    for days in range(100, 105):
        await _insert(session_factory, Run(days, completed_days_ago=days - 5))
    rows = sum((await _counts(session_factory)).values())
    watched = Transactions()
    watched.watch(engine)
    retention = RunRetention(timedelta(days=90), weights_window_runs=1, batch_rows=2)
    report = await purge_runs(session_factory, retention, NOW)
    assert max(watched.deleted) == 2
    assert sum(watched.deleted) == sum(report.deleted.values()) == rows - (1 + 2 + 6 + 1)
    assert len(watched.deleted) == report.transactions
    # per table: ceil(rows / 2) transactions for 4 runs' 24 scores, 8 responses, 4 jobs, 4 runs
    assert report.transactions == 12 + 4 + 2 + 2
    assert len(await _run_ids(session_factory)) == 1


async def test_the_dry_run_removes_nothing_and_counts_what_the_purge_removes(
    session_factory: async_sessionmaker,
) -> None:
    await _insert(session_factory, Run(1, RunStatus.AWAITING_ERA5))
    await _insert(session_factory, Run(2, RunStatus.AWAITING_ERA5))
    old = [await _insert(session_factory, Run(days, completed_days_ago=days - 10,
                                              finished_jobs=2))
           for days in (130, 105, 160)]
    await _insert(session_factory, Run(150, RunStatus.AWAITING_ERA5))
    before = await _counts(session_factory)
    plan = await plan_purge(session_factory, KEEP, NOW)
    text_plan = await purge_command(session_factory, KEEP, NOW, dry_run=True)
    assert await _counts(session_factory) == before
    assert plan.counts == {run_purge.RUNS: 3, run_purge.RESPONSES: 6, run_purge.SCORES: 18,
                           run_purge.JOBS: 6}
    assert plan.oldest is not None and plan.newest is not None
    assert (plan.oldest.run_id, plan.newest.run_id) == (old[2], old[1])
    assert plan.oldest.last_moment == NOW - timedelta(days=150)
    assert f"oldest: run {old[2]} " in text_plan and f"newest: run {old[1]} " in text_plan
    assert re.search(r"weather_miner_scores +18\n", text_plan) and "nothing removed" in text_plan
    report = await purge_runs(session_factory, KEEP, NOW)
    assert report.deleted == plan.counts


def test_the_command_line_shows_then_purges(database_url: str) -> None:
    asyncio.run(_old_runs(database_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    command = [sys.executable, "-m", "gaia.validator.admin", "--database-url", database_url,
               "--run-retention-days", "30", "purge"]
    dry = subprocess.run([*command, "--dry-run"], capture_output=True, text=True,
                         cwd=REPO_ROOT, env=env, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert re.search(r"weather_forecast_runs +3\n", dry.stdout) and "(30 days)" in dry.stdout
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "weather_forecast_runs 3," in done.stdout
    again = subprocess.run([*command, "--dry-run"], capture_output=True, text=True,
                           cwd=REPO_ROOT, env=env, timeout=60)
    assert re.search(r"weather_forecast_runs +0\n", again.stdout)
    short = subprocess.run([*command[:-2], "7", "purge"], capture_output=True, text=True,
                           cwd=REPO_ROOT, env=env, timeout=60)
    assert short.returncode == 2 and "at least weights_window_runs + 1 = 8 days" in short.stderr


async def _old_runs(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        factory = async_sessionmaker(engine, expire_on_commit=False)
        async with factory.begin() as session:
            await truncate_all(session)
        now = datetime.now(UTC)
        for days in range(40, 50):  # the newest 7 are the weights window's
            await _insert(factory, Run(days, completed_days_ago=days - 5), now)
    finally:
        await engine.dispose()


async def test_the_scheduled_job_purges_runs_and_bounds_the_gfs_cache(
    database_url: str, engine: AsyncEngine, session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    now = NOW + timedelta(hours=10)  # no daily run due
    window = [await _insert(session_factory, Run(1 + day, RunStatus.AWAITING_ERA5), now)
              for day in range(2)]
    await _insert(session_factory, Run(120, completed_days_ago=100), now)
    cache = tmp_path / "gfs"
    for cycle, used in ((now - timedelta(days=9), now - timedelta(days=8)), (now, now)):
        with gfs_cache.using(cache, floor_to_cycle(cycle), lambda used=used: used):
            pass
    clock = VirtualClock(now)
    scheduler = Scheduler(session_factory, JobQueue(all_policies(), clock), RunTiming(), clock,
                          [PeriodicJob(RETENTION, PURGE_EVERY)])
    assert await scheduler.tick() == [f"{RETENTION}:{periodic_slot(now, PURGE_EVERY)}"]
    ctx = RetentionContext(session_factory, KEEP, cache, CacheBound(10**9, timedelta(days=3)),
                           clock)
    registry = JobRegistry()
    registry.register(RETENTION, partial(retain, ctx), policy=POLICIES[RETENTION],
                      payload_model=PeriodicPayload)
    worker = Worker(asyncpg_dsn(database_url), registry, session_factory,
                    WorkerOptions(concurrency=1, idle_poll_s=0.2), clock=clock)
    running = asyncio.create_task(worker.run())
    try:
        await wait_for(engine, f"SELECT status FROM validator_jobs WHERE job_type = '{RETENTION}'",
                       lambda status: status == "succeeded")
    finally:
        worker.stop()
        await running
    assert await _run_ids(session_factory) == set(window)
    assert [e.name for e in gfs_cache.entries(cache)] == [gfs_cache.cycle_name(floor_to_cycle(now))]
    assert await scheduler.tick() == []  # once per slot


async def test_the_purge_knows_every_table_that_hangs_off_a_run(engine: AsyncEngine) -> None:
    """A new foreign key to runs (or to responses) must be purged too: this fails until it is."""
    async with engine.connect() as conn:
        referencing = set((await conn.execute(text(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint"
            " WHERE contype = 'f' AND confrelid::regclass::text = ANY(:parents)"),
            {"parents": [run_purge.RUNS, run_purge.RESPONSES, run_purge.SCORES]})).all())
    assert referencing == {(run_purge.RESPONSES, run_purge.RUNS),
                           (run_purge.SCORES, run_purge.RUNS)}

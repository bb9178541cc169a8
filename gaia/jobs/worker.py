"""The worker runtime: N handlers at once in one process, sharing the queue through PostgreSQL.

The hot path runs on raw asyncpg connections: one statement claims up to as many jobs as
there are free handler slots (``FOR UPDATE SKIP LOCKED``), and finished jobs are written in
batches by one flusher (while a batch is being written, the next one gathers). A worker with
free slots that found work claims again at once; it only waits when the queue had no ready
job, until a NOTIFY from an enqueue or ``idle_poll_s`` (delayed jobs, missed notifications).

Leases are renewed for all running jobs by one heartbeat every ``lease_s / 3``; each worker
also runs the reaper. On :meth:`Worker.stop` (SIGTERM) the worker stops claiming, lets
running handlers finish within ``shutdown_grace_s``, then cancels the rest and hands their
jobs back to the queue without counting the attempt (stopping is not the job's fault; a
worker that dies instead loses the attempt when its lease expires).

Any error of the runtime's own database work (a lost connection) stops the worker with that
error: its jobs come back through their leases, and the process supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import socket
import traceback
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.config import ValidatorSettings
from gaia.database.validator_schema import JobStatus
from gaia.jobs import sql
from gaia.jobs.giveup import HeldJob, give_up, reap_expired
from gaia.jobs.outcomes import JobOutcome, Retry, TimedOut
from gaia.jobs.policy import Resolution, resolve
from gaia.jobs.queue import purge_finished
from gaia.jobs.registry import JobContext, JobLogger, JobRegistry, JobSpec, describe_subject

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 4000
PURGE_INTERVAL_S = 3600.0


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    concurrency: int = 16
    lease_s: float = 60.0
    backoff_scale: float = 1.0
    idle_poll_s: float = 1.0
    shutdown_grace_s: float = 30.0
    reap_interval_s: float | None = None  # default: lease_s / 2
    retention_days: float | None = None  # purge finished jobs hourly when set

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.lease_s <= 0 or self.idle_poll_s <= 0 or self.shutdown_grace_s < 0:
            raise ValueError(f"lease_s and idle_poll_s must be > 0, grace >= 0: {self}")

    @classmethod
    def from_settings(cls, validator: ValidatorSettings, **overrides: Any) -> WorkerOptions:
        """Options from the validator's settings (``workers``, ``lease_s``, ``backoff_scale``,
        ``job_retention_days``); ``overrides`` set the rest."""
        return cls(
            concurrency=validator.workers,
            lease_s=validator.lease_s,
            backoff_scale=validator.backoff_scale,
            retention_days=validator.job_retention_days,
            **overrides,
        )

    @property
    def reap_every_s(self) -> float:
        return self.reap_interval_s if self.reap_interval_s is not None else self.lease_s / 2


@dataclass(slots=True)
class _Claimed:
    job: HeldJob
    max_attempts: int
    spec: JobSpec[Any]
    task: asyncio.Task[None] | None = None


class Worker:
    def __init__(
        self,
        dsn: str,
        registry: JobRegistry,
        session_factory: async_sessionmaker[AsyncSession],
        options: WorkerOptions,
        *,
        worker_id: str | None = None,
    ) -> None:
        if not len(registry):
            raise ValueError("a worker needs at least one registered job type")
        self._dsn = dsn
        self._registry = registry
        self._session_factory = session_factory
        self._opts = options
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._running: dict[int, _Claimed] = {}
        self._finished: list[tuple[HeldJob, Resolution]] = []
        self._has_finished = asyncio.Event()
        self._flushed = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._pool: asyncpg.Pool | None = None
        self._group: asyncio.TaskGroup | None = None

    def stop(self) -> None:
        """Stop claiming and shut down gracefully (safe to call from a signal handler)."""
        self._stopping = True
        self._wakeup.set()
        self._slot_free.set()

    async def run(self, *, until_idle: bool = False) -> None:
        """Work until :meth:`stop` (or, with ``until_idle``, until no job is ready)."""
        self._stopping = False
        self._flushed.set()
        self._slot_free.set()
        pool = await asyncpg.create_pool(self._dsn, min_size=3, max_size=3)
        listener = await asyncpg.connect(self._dsn)
        self._pool = pool
        try:
            await listener.add_listener(sql.CHANNEL, self._on_notify)
            async with asyncio.TaskGroup() as group:
                self._group = group
                background = [
                    group.create_task(self._flush_loop()),
                    group.create_task(self._heartbeat_loop()),
                    group.create_task(self._maintenance_loop()),
                ]
                await self._claim_loop(until_idle)
                await self._drain()
                for task in background:
                    task.cancel()
        finally:
            self._group = None
            await listener.close()
            await pool.close()
            self._pool = None

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    # --- claiming ------------------------------------------------------------------------

    async def _claim_loop(self, until_idle: bool) -> None:
        while True:
            await self._slot_free.wait()
            if self._stopping:
                return
            settled = self._flushed.is_set() and not self._running
            self._wakeup.clear()
            want = self._opts.concurrency - len(self._running)
            rows = await self._pool_fetch(
                sql.CLAIM, want, self.worker_id, self._opts.lease_s, self._registry.job_types
            )
            for row in rows:
                self._start(row)
            if len(rows) == want:
                continue
            if until_idle and not rows and not self._running:
                if settled:
                    return
                await self._flushed.wait()
                continue
            await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        try:
            async with asyncio.timeout(self._opts.idle_poll_s):
                await self._wakeup.wait()
        except TimeoutError:
            pass  # poll again: delayed jobs become due without a notification

    def _start(self, row: asyncpg.Record) -> None:
        job_id, job_type, payload, attempts, max_attempts, timeout_s = row
        job = HeldJob(job_id, job_type, json.loads(payload), attempts, timeout_s, self.worker_id)
        claimed = _Claimed(job, max_attempts, self._registry.spec(job_type))
        self._running[job_id] = claimed
        if len(self._running) >= self._opts.concurrency:
            self._slot_free.clear()
        assert self._group is not None, "the worker is not running"
        claimed.task = self._group.create_task(self._handle(claimed), name=f"job-{job_id}")

    # --- handling ------------------------------------------------------------------------

    async def _handle(self, claimed: _Claimed) -> None:
        job, spec = claimed.job, claimed.spec
        job_log = JobLogger(
            logging.getLogger(f"gaia.jobs.{job.job_type}"),
            {
                "job_id": job.id,
                "job_type": job.job_type,
                "attempt": job.attempts,
                "subject": describe_subject(job.payload),
            },
        )
        ctx = JobContext(
            job.id, job.job_type, job.attempts, claimed.max_attempts, job.timeout_s,
            self._session_factory, job_log,
        )
        try:
            outcome = await self._outcome(spec, job, ctx)
            resolution = resolve(
                outcome,
                attempts=job.attempts,
                max_attempts=claimed.max_attempts,
                timeout_s=job.timeout_s,
                policy=spec.policy,
                backoff_scale=self._opts.backoff_scale,
            )
            _log_outcome(job_log, resolution)
            if resolution.status is JobStatus.FAILED:
                failed = HeldJob(
                    job.id, job.job_type, job.payload, job.attempts,
                    resolution.timeout_s, self.worker_id,
                )
                await give_up(self._session_factory, spec, failed, resolution.error or "", job_log)
            else:
                self._finished.append((job, resolution))
                self._flushed.clear()
                self._has_finished.set()
        finally:
            del self._running[job.id]
            self._slot_free.set()

    @staticmethod
    async def _outcome(spec: JobSpec[Any], job: HeldJob, ctx: JobContext) -> JobOutcome | None:
        deadline = asyncio.timeout(job.timeout_s)
        try:
            payload = spec.parse(job.payload)
            async with deadline:
                await spec.handler(payload, ctx)
        except JobOutcome as outcome:
            return outcome
        except Exception:  # noqa: BLE001 - the worker's top level: log, record, retry
            if deadline.expired():
                return TimedOut(job.timeout_s)
            ctx.log.exception("handler raised")
            return Retry(traceback.format_exc()[-MAX_ERROR_CHARS:])
        return None

    # --- writing results, leases, shutdown --------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._has_finished.wait()
            self._has_finished.clear()
            batch, self._finished = self._finished, []
            await self._write_finished(batch)
            if not self._finished:
                self._flushed.set()

    async def _write_finished(self, batch: list[tuple[HeldJob, Resolution]]) -> None:
        jobs = [job for job, _ in batch]
        done = [resolution for _, resolution in batch]
        await self._pool_execute(
            sql.FINISH,
            self.worker_id,
            [j.id for j in jobs],
            [j.attempts for j in jobs],
            [r.status.value for r in done],
            [r.attempts for r in done],
            [r.timeout_s for r in done],
            [r.delay_s for r in done],
            [r.run_at for r in done],
            [r.error[-MAX_ERROR_CHARS:] if r.error else None for r in done],
        )

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._opts.lease_s / 3)
            if self._running:
                await self._pool_execute(
                    sql.EXTEND_LEASES, self.worker_id, self._opts.lease_s, list(self._running)
                )

    async def _maintenance_loop(self) -> None:
        last_purge = float("-inf")
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._opts.reap_every_s)
            await reap_expired(self._session_factory, self._registry)
            retention = self._opts.retention_days
            if retention is not None and loop.time() - last_purge >= PURGE_INTERVAL_S:
                last_purge = loop.time()
                async with self._session_factory() as session, session.begin():
                    purged = await purge_finished(session, retention)
                log.info("purged %d finished jobs older than %g days", purged, retention)

    async def _drain(self) -> None:
        """Let running handlers finish within the grace period; hand the rest back."""
        tasks = [c.task for c in self._running.values() if c.task is not None]
        if tasks:
            log.info("worker %s: waiting up to %g s for %d running jobs",
                     self.worker_id, self._opts.shutdown_grace_s, len(tasks))
            await asyncio.wait(tasks, timeout=self._opts.shutdown_grace_s)
        leftover = {job_id: c.task for job_id, c in self._running.items() if c.task is not None}
        for task in leftover.values():
            task.cancel()
        if leftover:
            await asyncio.wait(leftover.values())
            await self._pool_fetch(sql.RELEASE, self.worker_id, list(leftover))
            log.warning("worker %s: released %d unfinished jobs: %s",
                        self.worker_id, len(leftover), sorted(leftover))
        await self._flushed.wait()

    async def _pool_fetch(self, statement: str, *args: Any) -> list[asyncpg.Record]:
        assert self._pool is not None, "the worker is not running"
        return await self._pool.fetch(statement, *args)

    async def _pool_execute(self, statement: str, *args: Any) -> None:
        assert self._pool is not None, "the worker is not running"
        await self._pool.execute(statement, *args)


def _log_outcome(job_log: JobLogger, resolution: Resolution) -> None:
    if resolution.status is JobStatus.SUCCEEDED:
        job_log.info("succeeded")
    elif resolution.status is JobStatus.QUEUED:
        when = resolution.run_at.isoformat() if resolution.run_at else f"in {resolution.delay_s:g} s"
        job_log.warning("rescheduled %s: %s", when, (resolution.error or "").splitlines()[-1:])


def stop_on_signals(worker: Worker, signals: tuple[signal.Signals, ...] = (
    signal.SIGTERM, signal.SIGINT,
)) -> None:
    """Make SIGTERM/SIGINT stop ``worker`` gracefully (call inside the running loop)."""
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, worker.stop)

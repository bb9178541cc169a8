"""The worker runtime: N handlers at once in one process, sharing the queue through PostgreSQL.

The hot path is one loop on the worker's own asyncpg connection. Each round trip is one statement that
writes every job finished since the last one and claims up to as many jobs as there are free
handler slots (``FOR UPDATE SKIP LOCKED``), so claims and completions are batched without any
timer. A worker with free slots that found work claims again at once; it only waits when the
queue had no ready job, until a NOTIFY from an enqueue or ``idle_poll_s`` (delayed jobs,
missed notifications).

Job types registered with a :class:`~gaia.jobs.registry.ConcurrencyLimit` are claimed only
while their group has a free place in this worker (:mod:`gaia.jobs.claims`): a job that
needs a scarce resource of the process waits in the queue, not in a handler slot, and the
other types are claimed past it. A finished job of a full group frees its place and the
worker claims the group's next job in the same round trip that writes the finished one.

The handler timeout runs from the start of the handler; time inside
:func:`gaia.jobs.deadline.not_counted` (a wait for a shared resource) does not count.

``prefetch`` lets a worker claim that many jobs beyond its free handler slots; a prefetched
job starts the moment a handler finishes, so the next round trip overlaps with handling and
batches grow. That pays for floods of short jobs; with long jobs it lets a busy worker sit on
work an idle worker could do, hence the default of 0.

Leases are renewed for all running jobs by one heartbeat every ``lease_s / 3``; each worker
also runs the reaper. On :meth:`Worker.stop` (SIGTERM) the worker stops claiming, lets
running handlers finish within ``shutdown_grace_s``, then cancels the rest and hands their
jobs back to the queue without counting the attempt (stopping is not the job's fault; a
worker that dies instead loses the attempt when its lease expires).

Any error of the runtime's own database work (a lost connection) stops the worker with that
error: its jobs come back through their leases, and the process supervisor restarts it.

Due times are compared with the injected clock (``clock``), never with the database's time,
so the worker follows a virtual clock in a simulation; leases stay on real time.

An ``observer`` (:mod:`gaia.jobs.observer`) hears of every claim and of every handler run's
result and duration; the validator's metrics are one.
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
from collections import deque
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.clock import Now, system_clock
from gaia.jobs import sql
from gaia.jobs.claims import Ask, ClaimGroups, claim_parameters
from gaia.jobs.deadline import counting
from gaia.jobs.giveup import HeldJob, give_up, reap_expired
from gaia.jobs.observer import NO_OBSERVER, WorkerObserver, result_of
from gaia.jobs.outcomes import JobOutcome, Retry, TimedOut
from gaia.jobs.policy import Resolution, resolve
from gaia.jobs.queue import purge_finished
from gaia.jobs.registry import JobContext, JobLogger, JobRegistry, JobSpec, job_logger
from gaia.jobs.schema import JobStatus

log = logging.getLogger(__name__)

MAX_JOB_ERROR_CHARS = 4000  # a job error's tail kept in validator_jobs.last_error
PURGE_INTERVAL_S = 3600.0


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    concurrency: int = 16
    lease_s: float = 60.0
    backoff_scale: float = 1.0
    idle_poll_s: float = 1.0
    shutdown_grace_s: float = 30.0
    prefetch: int = 0  # jobs claimed ahead of free handler slots (see the module docstring)
    reap_interval_s: float | None = None  # default: lease_s / 2
    retention_days: float | None = None  # purge finished jobs hourly when set

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.prefetch < 0:
            raise ValueError(f"need concurrency >= 1 and prefetch >= 0, got {self}")
        if self.lease_s <= 0 or self.idle_poll_s <= 0 or self.shutdown_grace_s < 0:
            raise ValueError(f"lease_s and idle_poll_s must be > 0, grace >= 0: {self}")

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
    """Runs the handlers of ``registry`` for jobs of its types, ``options.concurrency`` at once.

    ``dsn`` is a plain asyncpg DSN (:func:`gaia.jobs.asyncpg_dsn`) for the worker's own
    connection; handlers, give-up hooks and the reaper use ``session_factory``.
    """

    def __init__(
        self,
        dsn: str,
        registry: JobRegistry,
        session_factory: async_sessionmaker[AsyncSession],
        options: WorkerOptions,
        *,
        worker_id: str | None = None,
        clock: Now = system_clock,
        observer: WorkerObserver = NO_OBSERVER,
    ) -> None:
        if not len(registry):
            raise ValueError("a worker needs at least one registered job type")
        self._dsn = dsn
        self._registry = registry
        self._claims = ClaimGroups(registry)
        self._session_factory = session_factory
        self._opts = options
        self._clock = clock
        self._observer = observer
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._held: dict[int, _Claimed] = {}  # claimed and not yet finished
        self._waiting: deque[_Claimed] = deque()  # held, not started (prefetched)
        self._finished: list[tuple[HeldJob, Resolution]] = []
        self._news = asyncio.Event()  # a handler finished, a job was enqueued, or stop()
        self._notified = False
        self._stopping = False
        self._conn: asyncpg.Connection | None = None
        self._conn_lock = asyncio.Lock()
        self._group: asyncio.TaskGroup | None = None

    @property
    def idle(self) -> bool:
        """No job is held or waiting to be written back."""
        return not self._held and not self._finished

    def stop(self) -> None:
        """Stop claiming and shut down gracefully (safe to call from a signal handler)."""
        self._stopping = True
        self._news.set()

    async def run(self, *, until_idle: bool = False) -> None:
        """Work until :meth:`stop` (or, with ``until_idle``, until no job is ready).

        A worker runs once: after it stops, make a new one."""
        self._conn = await asyncpg.connect(self._dsn)
        try:
            await self._conn.add_listener(sql.CHANNEL, self._on_notify)
            async with asyncio.TaskGroup() as group:
                self._group = group
                background = [
                    group.create_task(self._heartbeat_loop()),
                    group.create_task(self._maintenance_loop()),
                ]
                await self._cycle_loop(until_idle)
                await self._drain()
                for task in background:
                    task.cancel()
        finally:
            self._group = None
            await self._conn.close()
            self._conn = None

    def _on_notify(self, *_: object) -> None:
        self._notified = True
        self._news.set()

    # --- the cycle: write finished jobs, claim more -----------------------------------------

    async def _cycle_loop(self, until_idle: bool) -> None:
        claims = self._claims
        capacity = self._opts.concurrency + self._opts.prefetch
        while not self._stopping:
            self._news.clear()
            if self._notified:
                self._notified = False
                claims.forget_drained()
            free = capacity - len(self._held)
            asks = claims.asks(free, (c.job.job_type for c in self._held.values()))
            if not asks and not self._finished:
                if until_idle and not self._held:
                    return  # nothing held, so every group is drained
                poll = self._opts.idle_poll_s if claims.any_drained else None
                if not await self._wait_for_news(poll):
                    claims.forget_drained()  # delayed jobs become due without a notification
                continue
            batch = self._finished
            want = min(free, sum(ask.places for ask in asks))
            rows = await self._cycle(asks, want)
            for row in rows:
                self._start(row)
            if any(r.status is JobStatus.QUEUED for _, r in batch):
                claims.forget_drained()  # put back, not visible to this claim's snapshot
            else:
                claims.observe(asks, [row[1] for row in rows], want)

    async def _wait_for_news(self, timeout_s: float | None) -> bool:
        """Wait for :attr:`_news`; False if ``timeout_s`` passed first."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._news.wait()
        except TimeoutError:
            return False
        return True

    async def _cycle(self, asks: list[Ask], want: int) -> list[asyncpg.Record]:
        """One round trip: write the finished jobs, claim up to ``want`` as ``asks`` allow."""
        batch, self._finished = self._finished, []
        jobs = [job for job, _ in batch]
        done = [resolution for _, resolution in batch]
        job_types, group_numbers, places = claim_parameters(asks)
        return await self._fetch(
            sql.CYCLE,
            self.worker_id,
            self._opts.lease_s,
            job_types,
            want,
            [j.id for j in jobs],
            [j.attempts for j in jobs],
            [r.status.value for r in done],
            [r.attempts for r in done],
            [r.timeout_s for r in done],
            [r.delay_s for r in done],
            [r.run_at for r in done],
            [r.error[-MAX_JOB_ERROR_CHARS:] if r.error else None for r in done],
            self._clock(),
            group_numbers,
            places,
        )

    def _start(self, row: asyncpg.Record) -> None:
        job_id, job_type, payload, attempts, max_attempts, timeout_s = row
        job = HeldJob(job_id, job_type, json.loads(payload), attempts, timeout_s, self.worker_id)
        claimed = _Claimed(job, max_attempts, self._registry.spec(job_type))
        self._held[job_id] = claimed
        self._observer.job_claimed(job_type)
        if len(self._held) - len(self._waiting) > self._opts.concurrency:
            self._waiting.append(claimed)
        else:
            self._launch(claimed)

    def _launch(self, claimed: _Claimed) -> None:
        assert self._group is not None, "the worker is not running"
        claimed.task = self._group.create_task(self._handle(claimed), name=f"job-{claimed.job.id}")

    # --- handling ------------------------------------------------------------------------

    async def _handle(self, claimed: _Claimed) -> None:
        job, spec = claimed.job, claimed.spec
        job_log = job_logger(job.id, job.job_type, job.attempts, job.payload)
        ctx = JobContext(
            job.id, job.job_type, job.attempts, claimed.max_attempts, job.timeout_s,
            self._session_factory, job_log,
        )
        started = asyncio.get_running_loop().time()
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
            self._observer.job_finished(job.job_type, result_of(outcome, resolution),
                                        asyncio.get_running_loop().time() - started)
            if resolution.status is JobStatus.FAILED:
                failed = HeldJob(
                    job.id, job.job_type, job.payload, job.attempts,
                    resolution.timeout_s, self.worker_id,
                )
                await give_up(self._session_factory, spec, failed, resolution.error or "", job_log)
            else:
                self._finished.append((job, resolution))
        finally:
            # The reaper may have handed this job to a later claim (of this very worker)
            # while it ran; that claim owns the entry now, and its completion counts.
            if self._held.get(job.id) is claimed:
                del self._held[job.id]
            if self._waiting and not self._stopping:
                self._launch(self._waiting.popleft())
            self._news.set()

    @staticmethod
    async def _outcome(spec: JobSpec[Any], job: HeldJob, ctx: JobContext) -> JobOutcome | None:
        deadline = asyncio.timeout(job.timeout_s)
        try:
            payload = spec.parse(job.payload)
            async with deadline:
                with counting(deadline):
                    await spec.handler(payload, ctx)
        except JobOutcome as outcome:
            return outcome
        except Exception:  # noqa: BLE001 - the worker's top level: log, record, retry
            if deadline.expired():
                return TimedOut(job.timeout_s)
            ctx.log.exception("handler raised")
            return Retry(traceback.format_exc()[-MAX_JOB_ERROR_CHARS:])
        return None

    # --- leases, maintenance, shutdown --------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._opts.lease_s / 3)
            if self._held:
                await self._fetch(
                    sql.EXTEND_LEASES, self.worker_id, self._opts.lease_s, list(self._held)
                )

    async def _maintenance_loop(self) -> None:
        last_purge = float("-inf")
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._opts.reap_every_s)
            await reap_expired(self._session_factory, self._registry, clock=self._clock)
            retention = self._opts.retention_days
            if retention is not None and loop.time() - last_purge >= PURGE_INTERVAL_S:
                last_purge = loop.time()
                async with self._session_factory() as session, session.begin():
                    purged = await purge_finished(session, retention)
                log.info("purged %d finished jobs older than %g days", purged, retention)

    async def _drain(self) -> None:
        """Let running handlers finish within the grace period; hand the rest back."""
        tasks = [c.task for c in self._held.values() if c.task is not None]
        if tasks:
            log.info("worker %s: waiting up to %g s for %d running jobs",
                     self.worker_id, self._opts.shutdown_grace_s, len(tasks))
            await asyncio.wait(tasks, timeout=self._opts.shutdown_grace_s)
        leftover = list(self._held)
        started = [c.task for c in self._held.values() if c.task is not None]
        for task in started:
            task.cancel()
        if started:
            await asyncio.wait(started)
        if leftover:
            await self._fetch(sql.RELEASE, self.worker_id, leftover, self._clock())
            log.warning("worker %s: released %d unfinished jobs: %s",
                        self.worker_id, len(leftover), sorted(leftover))
        self._held.clear()
        self._waiting.clear()
        if self._finished:
            await self._cycle([], 0)

    async def _fetch(self, statement: str, *args: Any) -> list[asyncpg.Record]:
        """Run a statement on the worker's connection. The cycle, the heartbeat and the release
        take turns: statements of one worker that lock the same rows never overlap (no
        deadlock between a lease renewal and a batch of completions)."""
        assert self._conn is not None, "the worker is not running"
        async with self._conn_lock:
            return await self._conn.fetch(statement, *args)


def _log_outcome(job_log: JobLogger, resolution: Resolution) -> None:
    if resolution.status is JobStatus.SUCCEEDED:
        job_log.info("succeeded")
    elif resolution.status is JobStatus.QUEUED:
        when = resolution.run_at.isoformat() if resolution.run_at else f"in {resolution.delay_s:g} s"
        last_line = (resolution.error or "").strip().rsplit("\n", 1)[-1]
        # Waiting for a subject (run_at: NotReady) is routine; a retry after a failure is not.
        level = logging.INFO if resolution.run_at else logging.WARNING
        job_log.log(level, "rescheduled %s: %s", when, last_line)


def stop_on_signals(worker: Worker, signals: tuple[signal.Signals, ...] = (
    signal.SIGTERM, signal.SIGINT,
)) -> None:
    """Make SIGTERM/SIGINT stop ``worker`` gracefully (call inside the running loop)."""
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, worker.stop)

"""Enqueue jobs in the caller's transaction; inspect and maintain the queue."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gaia.clock import Now, system_clock
from gaia.jobs import sql
from gaia.jobs.policy import RetryPolicy
from gaia.jobs.schema import JobStatus

Executor = AsyncSession | AsyncConnection
Payload = Mapping[str, Any] | BaseModel


class LiveSingletonExists(Exception):
    """A job cannot be requeued while another live job holds its singleton key."""


@dataclass(frozen=True, slots=True)
class NewJob:
    job_type: str
    payload: Payload
    singleton_key: str | None = None


def singleton_key(job_type: str, **subject: object) -> str:
    """``singleton_key("weather.query_miner", run=42, hotkey="5F…")`` →
    ``"weather.query_miner:run=42:hotkey=5F…"`` (fields in the order given)."""
    if not subject:
        raise ValueError(f"a singleton key for {job_type!r} needs at least one subject field")
    for name, value in subject.items():
        if value is None or ":" in str(value):
            raise ValueError(f"singleton key field {name}={value!r} must be set and contain no ':'")
    return ":".join([job_type, *(f"{name}={value}" for name, value in subject.items())])


def _payload_dict(payload: Payload) -> dict[str, Any]:
    if isinstance(payload, BaseModel):
        return payload.model_dump(mode="json")
    return dict(payload)


def _aware(run_at: datetime | None) -> datetime | None:
    if run_at is not None and run_at.tzinfo is None:
        raise ValueError(f"run_at must be timezone-aware, got naive {run_at}")
    return run_at


class JobQueue:
    """Enqueues jobs with the attempts and timeout of their type's policy.

    Enqueue runs on the caller's session or connection and commits with it: the state
    change and the next job commit together or not at all. A job without ``run_at`` is due
    at ``clock()``.
    """

    def __init__(self, policies: Mapping[str, RetryPolicy], clock: Now = system_clock) -> None:
        self._policies = dict(policies)
        self.clock = clock

    def policy(self, job_type: str) -> RetryPolicy:
        try:
            return self._policies[job_type]
        except KeyError:
            raise KeyError(f"no retry policy for job type {job_type!r}") from None

    async def enqueue(
        self,
        executor: Executor,
        job_type: str,
        payload: Payload,
        *,
        singleton_key: str | None = None,
        run_at: datetime | None = None,
    ) -> int | None:
        """Insert one job; returns its id, or ``None`` when a live job holds ``singleton_key``."""
        policy = self.policy(job_type)
        result = await executor.execute(
            sql.ENQUEUE,
            {
                "job_type": job_type,
                "payload": _payload_dict(payload),
                "singleton_key": singleton_key,
                "run_at": _aware(run_at),
                "now": self.clock(),
                "max_attempts": policy.max_attempts,
                "timeout_s": policy.timeout_s,
            },
        )
        return result.scalar_one_or_none()

    async def enqueue_many(
        self, executor: Executor, jobs: Sequence[NewJob], *, run_at: datetime | None = None
    ) -> list[int]:
        """Insert many jobs in one statement; returns the ids of those inserted (jobs whose
        singleton key is live are skipped)."""
        if not jobs:
            return []
        policies = [self.policy(job.job_type) for job in jobs]
        result = await executor.execute(
            sql.ENQUEUE_MANY,
            {
                "job_types": [job.job_type for job in jobs],
                "payloads": [json.dumps(_payload_dict(job.payload)) for job in jobs],
                "singleton_keys": [job.singleton_key for job in jobs],
                "max_attempts": [p.max_attempts for p in policies],
                "timeouts": [p.timeout_s for p in policies],
                "run_at": _aware(run_at),
                "now": self.clock(),
            },
        )
        return list(result.scalars())


async def singleton_key_used(executor: Executor, singleton_key: str) -> bool:
    """True when a job with this key exists in any state (a slot already taken)."""
    result = await executor.execute(sql.SINGLETON_KEY_USED, {"singleton_key": singleton_key})
    return bool(result.scalar_one())


async def job_counts(executor: Executor) -> dict[tuple[str, JobStatus], int]:
    """Number of jobs by (job type, status)."""
    rows = await executor.execute(sql.JOB_COUNTS)
    return {(job_type, JobStatus(status)): n for job_type, status, n in rows}


async def requeue_job(executor: Executor, job_id: int, *, now: datetime | None = None) -> bool:
    """Put a failed or cancelled job back in the queue with a fresh set of attempts, due at
    ``now`` (default: the system clock).

    Returns False when the job is not failed or cancelled. Raises
    :class:`LiveSingletonExists` when a live job holds its singleton key (the caller's
    transaction is then aborted).
    """
    try:
        result = await executor.execute(
            sql.REQUEUE_FINISHED, {"id": job_id, "now": now or system_clock()}
        )
    except IntegrityError as exc:
        raise LiveSingletonExists(
            f"job {job_id} cannot be requeued: a live job holds its singleton key"
        ) from exc
    return result.first() is not None


@dataclass(frozen=True, slots=True)
class QueueTiming:
    """Where the queue stands at a moment: what runs, what is due, when the next job is."""

    running: int
    due: int
    next_run_at: datetime | None

    @property
    def settled(self) -> bool:
        """Nothing running and nothing due: only a later moment can bring work."""
        return self.running == 0 and self.due == 0


async def queue_timing(executor: Executor, now: datetime) -> QueueTiming:
    running, due, next_run_at = (await executor.execute(sql.NEXT_DUE, {"now": now})).one()
    return QueueTiming(int(running), int(due), next_run_at)


async def oldest_due(executor: Executor, now: datetime) -> datetime | None:
    """When the longest-waiting due, unclaimed job became due (None when none is due)."""
    moment: datetime | None = (await executor.execute(sql.OLDEST_DUE, {"now": now})).scalar()
    return moment


async def wake_workers(executor: Executor) -> None:
    """Notify every listening worker that jobs may be due (a virtual clock moved on)."""
    await executor.execute(sql.WAKE_WORKERS)


async def cancel_job(executor: Executor, job_id: int) -> bool:
    """Cancel a queued job; returns False when it is not queued (running jobs finish)."""
    result = await executor.execute(sql.CANCEL_QUEUED, {"id": job_id})
    return result.first() is not None


async def purge_finished(executor: Executor, older_than_days: float) -> int:
    """Delete succeeded, failed and cancelled jobs finished more than N days ago."""
    if older_than_days < 0:
        raise ValueError(f"older_than_days must be >= 0, got {older_than_days}")
    result = await executor.execute(sql.PURGE_FINISHED, {"older_than_s": older_than_days * 86400})
    return int(result.rowcount)  # type: ignore[attr-defined]


def asyncpg_dsn(database_url: str) -> str:
    """A plain ``postgresql://`` DSN for asyncpg from a SQLAlchemy URL."""
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        raise ValueError(f"the job queue needs PostgreSQL, got {url.drivername!r}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)

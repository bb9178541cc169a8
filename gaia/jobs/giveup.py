"""Failing a job for good: the job row and its subject (the give-up hook) in one transaction,
and the reaper that recovers jobs whose worker stopped renewing its lease."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.clock import Now, system_clock
from gaia.jobs import sql
from gaia.jobs.registry import JobRegistry, JobSpec, job_logger

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HeldJob:
    """A running job as its holder sees it: enough to update it only if it still holds it."""

    id: int
    job_type: str
    payload: dict[str, Any]
    attempts: int
    timeout_s: float
    locked_by: str | None


async def give_up(
    session_factory: async_sessionmaker[AsyncSession],
    spec: JobSpec[Any],
    job: HeldJob,
    reason: str,
    job_log: logging.Logger | logging.LoggerAdapter = log,  # type: ignore[type-arg]
) -> bool:
    """Mark ``job`` failed and run the type's give-up hook in the same transaction.

    Returns False when the job was no longer held as ``job`` says (someone else finished or
    reaped it). If the hook raises, the job is still marked failed, with the hook's error
    appended to ``last_error`` (an operator can requeue it once the cause is fixed).
    """
    params = {
        "id": job.id,
        "claimed": job.attempts,
        "locked_by": job.locked_by,
        "attempts": job.attempts,
        "timeout_s": job.timeout_s,
        "error": reason,
    }
    try:
        async with session_factory() as session, session.begin():
            if (await session.execute(sql.MARK_FAILED, params)).first() is None:
                return False
            if spec.on_give_up is not None:
                await spec.on_give_up(session, spec.parse(job.payload), reason)
    except Exception as exc:  # noqa: BLE001 - the hook is foreign code: log, record, fail the job
        job_log.exception("give-up hook of %s failed", spec.job_type)
        params["error"] = f"{reason}; give-up hook failed: {exc!r}"
        async with session_factory() as session, session.begin():
            return (await session.execute(sql.MARK_FAILED, params)).first() is not None
    job_log.warning("failed for good: %s", reason)
    return True


@dataclass(frozen=True, slots=True)
class ReapResult:
    requeued: int
    failed: int


async def reap_expired(
    session_factory: async_sessionmaker[AsyncSession], registry: JobRegistry, *, limit: int = 500,
    clock: Now = system_clock,
) -> ReapResult:
    """Recover running jobs of the registry's types whose lease has expired.

    A job with attempts left goes back to the queue, due at ``clock()`` (the lost attempt
    counts); one without fails, and its give-up hook runs.
    """
    types = registry.job_types
    async with session_factory() as session, session.begin():
        row = (
            await session.execute(
                sql.REQUEUE_EXPIRED, {"job_types": types, "limit": limit, "now": clock()}
            )
        ).one()
        requeued = int(row[0])
        exhausted = (
            await session.execute(sql.SELECT_EXHAUSTED_EXPIRED, {"job_types": types, "limit": limit})
        ).all()
    failed = 0
    for job_id, job_type, payload, attempts, timeout_s, locked_by in exhausted:
        job = HeldJob(job_id, job_type, payload, attempts, timeout_s, locked_by)
        reason = f"gave up after {attempts} attempts: lease expired on {locked_by}"
        job_log = job_logger(job_id, job_type, attempts, payload)
        failed += await give_up(session_factory, registry.spec(job_type), job, reason, job_log)
    if requeued or failed:
        log.warning("reaper: %d expired jobs requeued, %d failed", requeued, failed)
    return ReapResult(requeued, failed)

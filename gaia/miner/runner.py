"""Runs forecast jobs as asyncio tasks, at most one task per job in this process.

This is the worker's top level: a job that raises is logged with its traceback and recorded
as failed with the reason; a cancelled job (shutdown) stays unfinished in the database and
is resumed at the next start. The miner runs one server process, so this process owns every
unfinished job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from gaia.clock import Now
from gaia.miner.database import UNFINISHED, JobRecord, MinerDatabase
from gaia.miner.metrics import JobRunOutcome, MinerMetrics
from gaia.tasks.defined_tasks.weather.protocol import MAX_MINER_ERROR_CHARS

log = logging.getLogger(__name__)


def describe_failure(exc: BaseException) -> str:
    """The reason a caller sees: exception type and message, bounded in length."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_MINER_ERROR_CHARS else text[: MAX_MINER_ERROR_CHARS - 3] + "..."


class JobRunner:
    def __init__(
        self,
        execute: Callable[[JobRecord], Awaitable[object]],
        db: MinerDatabase,
        clock: Now,
        metrics: MinerMetrics | None = None,
    ) -> None:
        self._execute = execute
        self._db = db
        self._clock = clock
        self._metrics = metrics if metrics is not None else MinerMetrics()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def ensure_running(self, job: JobRecord) -> bool:
        """Start ``job`` unless it already runs here; True when a run was started."""
        current = self._tasks.get(job.job_id)
        if current is not None and not current.done():
            return False
        self._tasks[job.job_id] = asyncio.create_task(self._run(job), name=f"job-{job.job_id}")
        return True

    async def resume_unfinished(self) -> int:
        """Start every job the database holds as unfinished (after a restart)."""
        jobs = await self._db.jobs_with_status(UNFINISHED)
        for job in jobs:
            log.info("resuming job %s (%s, attempt %d)", job.job_id, job.status, job.attempts + 1)
            self.ensure_running(job)
        return len(jobs)

    async def close(self) -> None:
        """Cancel running jobs; they stay unfinished and resume at the next start."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, job: JobRecord) -> None:
        try:
            await self._execute(job)
        except asyncio.CancelledError:
            log.info("job %s interrupted; it resumes at the next start", job.job_id)
            self._metrics.job_ended(JobRunOutcome.INTERRUPTED)
            raise
        except Exception as exc:  # noqa: BLE001 - the worker's top level records every failure
            log.exception("job %s failed", job.job_id)
            self._metrics.job_ended(JobRunOutcome.FAILED)
            await self._db.mark_failed(job.job_id, describe_failure(exc), self._clock())
        else:
            self._metrics.job_ended(JobRunOutcome.READY)

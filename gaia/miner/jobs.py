"""Service behind the job routes: accept a cycle, start (or join) its job, report status."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from gaia.clock import Now
from gaia.database.miner_schema import MinerJob
from gaia.miner.database import JobRecord, MinerDatabase
from gaia.miner.errors import CycleOutsideWindow, NotFound, WrongMiner
from gaia.miner.runner import JobRunner
from gaia.tasks.defined_tasks.weather.protocol import (
    InitiateFetchRequest,
    InitiateFetchResponse,
    JobProgress,
    JobStatusResponse,
    MinerJobStatus,
    job_id_for,
    manifest_url_path,
)
from gaia.tasks.defined_tasks.weather.variables import FORECAST_LEAD_HOURS

log = logging.getLogger(__name__)


def check_cycle_window(init_time: datetime, now: datetime, max_age: timedelta) -> None:
    """Refuse a cycle in the future or older than ``max_age`` (422)."""
    if init_time > now:
        raise CycleOutsideWindow(
            f"gfs_init_time {init_time.isoformat()} is in the future (now {now.isoformat()})"
        )
    if now - init_time > max_age:
        raise CycleOutsideWindow(
            f"gfs_init_time {init_time.isoformat()} is older than this miner's window of "
            f"{max_age.total_seconds() / 3600:g} h"
        )


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed job may run again: at most ``max_attempts`` runs in all; the second
    ``first_backoff`` after the first failure, each later one after twice the last wait.

    Every run fetches GFS again, so without a backoff each validator's poll of a broken job
    would cost the miner a fresh download.
    """

    max_attempts: int
    first_backoff: timedelta

    def next_attempt_at(self, job: JobRecord) -> datetime | None:
        """When the failed ``job`` may start again; None once it has used every attempt."""
        if job.attempts >= self.max_attempts:
            return None
        failed_at = job.finished_at or job.updated_at
        return failed_at + self.first_backoff * 2 ** max(job.attempts - 1, 0)


def status_response(job: JobRecord) -> JobStatusResponse:
    ready = job.status is MinerJobStatus.FORECAST_READY
    return JobStatusResponse(
        job_id=job.job_id,
        gfs_init_time=job.gfs_init_time,
        status=job.status,
        progress=JobProgress(leads_done=job.leads_done, leads_total=job.leads_total),
        error=job.error if job.status is MinerJobStatus.FAILED else None,
        manifest_hash=job.manifest_hash if ready else None,
        manifest_url=manifest_url_path(job.job_id) if ready else None,
    )


class JobService:
    def __init__(
        self,
        *,
        own_hotkey: str,
        model_name: str,
        max_cycle_age: timedelta,
        retry: RetryPolicy,
        db: MinerDatabase,
        runner: JobRunner,
        clock: Now,
    ) -> None:
        self._own_hotkey = own_hotkey
        self._model_name = model_name
        self._max_cycle_age = max_cycle_age
        self._retry = retry
        self._db = db
        self._runner = runner
        self._clock = clock

    async def initiate(self, request: InitiateFetchRequest, caller: str) -> InitiateFetchResponse:
        """Record the job for this cycle and start it; a known job is joined, not rerun.

        A failed job is started again when its :class:`RetryPolicy` allows: the failure may
        have been transient (GFS late).
        """
        if request.expected_miner_hotkey != self._own_hotkey:
            raise WrongMiner(
                f"this miner is {self._own_hotkey}, not {request.expected_miner_hotkey}"
            )
        now = self._clock()
        check_cycle_window(request.gfs_init_time, now, self._max_cycle_age)
        job, created = await self._db.get_or_create_job(self._new_job(request, caller, now))
        if job.status is MinerJobStatus.FAILED:
            job = await self._restarted(job, now)
        if not job.status.finished:
            self._runner.ensure_running(job)
        log.info(
            "initiate-fetch %s from %s: job %s %s (%s)",
            request.gfs_init_time.isoformat(),
            caller,
            job.job_id,
            job.status,
            "new" if created else "existing",
        )
        return InitiateFetchResponse(job_id=job.job_id, status=job.status)

    async def _restarted(self, job: JobRecord, now: datetime) -> JobRecord:
        """``job`` (failed) put back to run when the retry policy allows; as stored now."""
        due = self._retry.next_attempt_at(job)
        if due is None or now < due:
            log.info("job %s failed after %d attempt(s); %s", job.job_id, job.attempts,
                     "no attempts left" if due is None else f"next attempt from {due.isoformat()}")
            return job
        await self._db.restart_failed(job.job_id, job.attempts, now)
        return await self._existing(job.job_id)

    async def status(self, job_id: str) -> JobStatusResponse:
        return status_response(await self._existing(job_id))

    async def _existing(self, job_id: str) -> JobRecord:
        job = await self._db.get_job(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} on this miner")
        return job

    def _new_job(self, request: InitiateFetchRequest, caller: str, now: datetime) -> MinerJob:
        return MinerJob(
            job_id=job_id_for(self._own_hotkey, request.gfs_init_time),
            miner_hotkey=self._own_hotkey,
            gfs_init_time=request.gfs_init_time,
            model=self._model_name,
            status=MinerJobStatus.FETCHING_INPUTS,
            leads_done=0,
            leads_total=len(FORECAST_LEAD_HOURS),
            attempts=0,
            requested_by=caller,
            created_at=now,
            updated_at=now,
        )

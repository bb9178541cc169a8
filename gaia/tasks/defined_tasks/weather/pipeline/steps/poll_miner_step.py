"""``weather.poll_miner``: wait for one miner's forecast and commit to its manifest.

A miner that answers "still running" is polled until the run's commit deadline: each such
poll is ``NotReady`` and uses no attempt. The next poll is due at the sooner of

- the poll interval (``poll_interval_s``) after now, and
- the ready time extrapolated from progress: with ``leads_done`` of ``leads_total`` leads
  done ``elapsed`` after ``inference_started_at`` (when the miner accepted the job), the
  rest takes ``elapsed × (leads_total − leads_done) / leads_done``; never sooner than
  ``MIN_POLL_GAP_S`` (nor later than the interval); no leads done yet → the interval,

and never after the deadline: the last poll is due AT the deadline at the latest.

A poll that fails (timeout, refused connection, 5xx, 401/403/429) uses an attempt (10, then
``failed``: "no forecast in time") and is retried after the policy's backoff, or at the
deadline when that comes sooner; a poll failing at or after the deadline is ``failed``: late.

Ready → fetch the signed manifest, check its signature and content (against the protocol
and the run: its init time and the grid it recorded when it was made), store ``manifest_hash``
and ``manifest_fetched_at`` → ``forecast_ready``, then the day-1 job. The miner says failed →
``failed`` with its reason. Lateness is judged by the time the poll asks: a ready answer to a
poll that asked by the deadline (plus ``LATE_POLL_GRACE`` for a poll due at the deadline that
a busy worker starts a little late) is committed; a miner not ready when asked at or after
the deadline, or any answer to a poll asking later than that, is ``failed``: "late".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select

from gaia.database.validator_schema import WeatherMinerResponse
from gaia.jobs.outcomes import Invalid, NotReady, Retry
from gaia.jobs.registry import JobContext
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.pipeline.context import PipelineContext
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import ForecastRef
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.miner_client import as_outcomes, retry_after
from gaia.tasks.defined_tasks.weather.pipeline.payloads import ResponsePayload
from gaia.tasks.defined_tasks.weather.pipeline.responses import enqueue_next, fail_response, move
from gaia.tasks.defined_tasks.weather.protocol import JobProgress, JobStatusResponse, MinerJobStatus
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus
from gaia.validator.database import validator_database_manager as db

S = MinerResponseStatus
MIN_POLL_GAP_S: Final = 30.0
LATE_POLL_GRACE: Final = timedelta(seconds=60)


def next_poll_at(
    now: datetime,
    deadline: datetime,
    *,
    interval_s: float,
    started_at: datetime | None,
    progress: JobProgress,
) -> datetime:
    """When to poll a miner that is still running (the rule in the module docstring)."""
    gap = interval_s
    if started_at is not None and progress.leads_done > 0:
        elapsed = max((now - started_at).total_seconds(), 0.0)
        remaining = elapsed * (progress.leads_total - progress.leads_done) / progress.leads_done
        gap = min(interval_s, max(MIN_POLL_GAP_S, remaining))
    return min(now + timedelta(seconds=gap), deadline)


async def poll_miner(ctx: PipelineContext, payload: ResponsePayload, job: JobContext) -> None:
    async with ctx.session_factory() as session:
        target = await db.response_target(session, payload.response_id)
        run = await db.get_run(session, payload.run_id)
        started_at = await session.scalar(
            select(WeatherMinerResponse.inference_started_at)
            .where(WeatherMinerResponse.id == payload.response_id)
        )
    if target.miner_job_id is None or target.status not in (S.FETCH_INITIATED,
                                                             S.INFERENCE_RUNNING):
        return
    if target.status is S.FETCH_INITIATED:  # requeued by an operator before it moved on
        started_at = ctx.clock()
        async with ctx.session_factory.begin() as session:
            await move(session, payload, S.FETCH_INITIATED, S.INFERENCE_RUNNING,
                       inference_started_at=started_at)
    deadline = run.commit_deadline
    asked_at = ctx.clock()
    status = await _ask(ctx, job, target.base_url, target.hotkey, target.miner_job_id, deadline)
    if status.status is MinerJobStatus.FAILED:
        async with ctx.session_factory.begin() as session:
            await fail_response(session, payload, f"miner failed: {status.error}",
                                WeatherJob.POLL_MINER.step)
        return
    ready = status.status is MinerJobStatus.FORECAST_READY
    if asked_at > deadline + LATE_POLL_GRACE or (not ready and asked_at >= deadline):
        raise Invalid(f"late: no committed forecast by the deadline {deadline} "
                      f"(miner {status.status} at {asked_at}: {_leads(status.progress)})")
    if not ready:
        until = next_poll_at(ctx.clock(), deadline, interval_s=ctx.settings.poll_interval_s,
                             started_at=started_at, progress=status.progress)
        raise NotReady(until, f"miner {status.status}: {_leads(status.progress)}")
    forecast = ForecastRef(run.gfs_init_time, target.base_url, target.hotkey, target.miner_job_id)
    await _commit(ctx, payload, job, forecast, Grid.regular(run.grid_deg), status)


async def _ask(
    ctx: PipelineContext, job: JobContext, base_url: str, hotkey: str, job_id: str,
    deadline: datetime,
) -> JobStatusResponse:
    """The miner's job status; a failed poll is retried no later than the deadline."""
    try:
        with as_outcomes():
            return await ctx.miners.job_status(base_url, hotkey, job_id,
                                               timeout_s=job.timeout_s * 0.9)
    except Retry as failure:
        instead = _by_deadline(failure, ctx, job, deadline)
        if instead is None:
            raise
        raise instead from failure


def _by_deadline(
    failure: Retry, ctx: PipelineContext, job: JobContext, deadline: datetime
) -> Invalid | Retry | None:
    """What a failed poll becomes when the policy's backoff would pass the deadline: late if
    no time is left, else a retry at the deadline (None: the backoff fits, keep it)."""
    left_s = (deadline - ctx.clock()).total_seconds()
    if left_s <= 0:
        return Invalid(f"late: the poll at the deadline {deadline} failed ({failure.reason})")
    if ctx.queue.policy(job.job_type).delay_after(job.attempt) <= left_s:
        return None
    return retry_after(failure, left_s)


async def _commit(
    ctx: PipelineContext, payload: ResponsePayload, job: JobContext, forecast: ForecastRef,
    grid: Grid, status: JobStatusResponse,
) -> None:
    """Commit to the manifest, checked against the run's own grid (``grid``)."""
    assert status.manifest_hash is not None  # guaranteed by JobStatusResponse
    manifest_hash = await ctx.forecasts.commit_manifest(forecast, status.manifest_hash, grid)
    async with ctx.session_factory.begin() as session:
        await move(session, payload, S.INFERENCE_RUNNING, S.FORECAST_READY,
                   manifest_hash=manifest_hash, manifest_fetched_at=ctx.clock())
        await enqueue_next(ctx, session, WeatherJob.DAY1_SCORE, payload)
    job.log.info("forecast committed: manifest %s", manifest_hash)


def _leads(progress: JobProgress) -> str:
    return f"{progress.leads_done}/{progress.leads_total} leads"

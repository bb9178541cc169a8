"""``weather.poll_miner``: wait for one miner's forecast and commit to its manifest.

Still running → ``NotReady`` (each poll uses an attempt: 10 polls, then ``failed``: "no
forecast in time"). Ready → fetch the signed manifest, check its signature and content, store
``manifest_hash`` and ``manifest_fetched_at`` → ``forecast_ready`` (only before the run's
commit deadline; after it → ``failed``: "late"), then the day-1 job. The miner says failed →
``failed`` with its reason.
"""

from __future__ import annotations

from datetime import timedelta

from gaia.jobs.outcomes import Invalid, NotReady
from gaia.jobs.registry import JobContext
from gaia.jobs.retry_config import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.context import PipelineContext
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import ForecastRef
from gaia.tasks.defined_tasks.weather.pipeline.miner_client import as_outcomes
from gaia.tasks.defined_tasks.weather.pipeline.payloads import ResponsePayload
from gaia.tasks.defined_tasks.weather.pipeline.responses import enqueue_next, fail_response, move
from gaia.tasks.defined_tasks.weather.protocol import MinerJobStatus
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus
from gaia.validator.database import validator_database_manager as db

S = MinerResponseStatus
STEP = "poll_miner"


async def poll_miner(ctx: PipelineContext, payload: ResponsePayload, job: JobContext) -> None:
    async with ctx.session_factory() as session:
        target = await db.response_target(session, payload.response_id)
        run = await db.get_run(session, payload.run_id)
    if target.status is not S.INFERENCE_RUNNING or target.miner_job_id is None:
        return
    with as_outcomes():
        status = await ctx.miners.job_status(target.base_url, target.hotkey, target.miner_job_id,
                                             timeout_s=job.timeout_s * 0.9)
    now = ctx.clock()
    if status.status is MinerJobStatus.FAILED:
        async with ctx.session_factory.begin() as session:
            await fail_response(session, payload, f"miner failed: {status.error}", STEP)
        return
    if now >= run.commit_deadline:
        raise Invalid(f"late: no committed forecast by the deadline {run.commit_deadline}")
    if status.status is not MinerJobStatus.FORECAST_READY:
        progress = f"{status.progress.leads_done}/{status.progress.leads_total} leads"
        raise NotReady(now + timedelta(seconds=ctx.settings.poll_interval_s),
                       f"miner {status.status}: {progress}")
    assert status.manifest_hash is not None  # guaranteed by JobStatusResponse
    forecast = ForecastRef(run.gfs_init_time, target.base_url, target.hotkey,
                           target.miner_job_id)
    manifest_hash = await ctx.forecasts.commit_manifest(forecast, status.manifest_hash)
    async with ctx.session_factory.begin() as session:
        await move(session, payload, S.INFERENCE_RUNNING, S.FORECAST_READY,
                   manifest_hash=manifest_hash, manifest_fetched_at=ctx.clock())
        await enqueue_next(ctx, session, WeatherJob.DAY1_SCORE, payload)
    job.log.info("forecast committed: manifest %s", manifest_hash)


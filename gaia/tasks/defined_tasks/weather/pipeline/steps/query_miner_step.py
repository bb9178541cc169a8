"""``weather.query_miner``: ask one miner to forecast; it starts inference at once.

``created → fetch_initiated → inference_running`` in one transaction with the first poll.
The first poll is due at once when the miner answers ``forecast_ready`` (it computed this
forecast already, for another validator: commit it now), else after the poll interval, and
never after the run's commit deadline.

A timeout is ``TimedOut`` (the next attempt's timeout doubles), a refused connection, 5xx,
401, 403 or 429 is ``Retry`` (the policy's 60/300 s, then ``failed``: "miner offline"); a
malformed answer or another 4xx (422: the miner refuses the cycle) is ``Invalid``
(``failed`` at once). See :mod:`..miner_client` for the whole mapping.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gaia.jobs.outcomes import Invalid
from gaia.jobs.registry import JobContext
from gaia.tasks.defined_tasks.weather.pipeline.context import PipelineContext
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.miner_client import as_outcomes
from gaia.tasks.defined_tasks.weather.pipeline.payloads import ResponsePayload
from gaia.tasks.defined_tasks.weather.pipeline.responses import enqueue_next, move
from gaia.tasks.defined_tasks.weather.protocol import MinerJobStatus
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus
from gaia.validator.database import validator_database_manager as db

S = MinerResponseStatus


async def query_miner(ctx: PipelineContext, payload: ResponsePayload, job: JobContext) -> None:
    async with ctx.session_factory() as session:
        target = await db.response_target(session, payload.response_id)
        run = await db.get_run(session, payload.run_id)
    if target.status is not S.CREATED:
        return  # already asked (a rerun after a crash): the poll job was enqueued with it
    try:
        base_url = target.base_url
    except LookupError as error:
        raise Invalid(str(error)) from error
    with as_outcomes():
        answer = await ctx.miners.initiate_fetch(
            base_url, target.hotkey, run.gfs_init_time, timeout_s=job.timeout_s * 0.9
        )
    if answer.status is MinerJobStatus.FAILED:
        raise Invalid(f"the miner accepted job {answer.job_id} but reports it failed")
    now = ctx.clock()
    first_poll = _first_poll(now, answer.status, ctx.settings.poll_interval_s,
                             run.commit_deadline)
    async with ctx.session_factory.begin() as session:
        await move(session, payload, S.CREATED, S.FETCH_INITIATED, miner_job_id=answer.job_id)
        await move(session, payload, S.FETCH_INITIATED, S.INFERENCE_RUNNING,
                   inference_started_at=now)
        await enqueue_next(ctx, session, WeatherJob.POLL_MINER, payload, run_at=first_poll)
    job.log.info("miner accepted job %s (%s)", answer.job_id, answer.status)


def _first_poll(
    now: datetime, status: MinerJobStatus, interval_s: float, deadline: datetime
) -> datetime:
    if status is MinerJobStatus.FORECAST_READY:
        return now
    return min(now + timedelta(seconds=interval_s), deadline)

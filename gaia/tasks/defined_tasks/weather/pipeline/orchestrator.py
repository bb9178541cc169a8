"""Run-level singleton steps: create the run, seed its GFS data once, fan out one chain per miner.

Each step is idempotent: it looks at the run's status first, does only what is left, and moves
the run with a conditional update in the same transaction that enqueues the next job.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gaia.chain.client import ChainError
from gaia.jobs.outcomes import Invalid, NotReady, Retry
from gaia.jobs.queue import NewJob, singleton_key
from gaia.jobs.registry import JobContext
from gaia.tasks.defined_tasks.weather.data.gfs import GfsTransportError, GfsUnavailable
from gaia.tasks.defined_tasks.weather.data.gfs_idx import GfsMessageMissing
from gaia.tasks.defined_tasks.weather.data.grib import GfsDecodeError
from gaia.tasks.defined_tasks.weather.pipeline.context import PipelineContext
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import (
    ResponsePayload,
    RunCreatePayload,
    RunPayload,
)
from gaia.tasks.defined_tasks.weather.scoring.day1 import DAY1_FIELDS
from gaia.tasks.defined_tasks.weather.states import (
    BEFORE_FAN_OUT_RUN_STATUSES,
    MinerResponseStatus,
    RunStatus,
)
from gaia.validator.database import validator_database_manager as db
from gaia.validator.pause import hold_if_paused

GFS_RECHECK = timedelta(minutes=10)


async def create_run(ctx: PipelineContext, payload: RunCreatePayload, job: JobContext) -> None:
    """``weather.run.create``: the run row (one per init time and mode) and its seed job.
    Held while the validator is paused (:mod:`gaia.validator.pause`)."""
    async with ctx.session_factory.begin() as session:
        await hold_if_paused(session, forced=ctx.settings.paused, what="run creation",
                             now=ctx.clock(), deadline=payload.commit_deadline)
        run_id, created = await db.create_run(
            session, payload.init_time, payload.mode, payload.commit_deadline,
            grid_deg=ctx.settings.grid_deg,
        )
        run = await db.get_run(session, run_id)
        if run.status is RunStatus.CREATED:
            await enqueue_run_job(ctx, session, WeatherJob.SEED, run_id)
    job.log.info("run %s for %s (%s) %s", run_id, payload.init_time, payload.mode,
                 "created" if created else "already existed")


async def enqueue_run_job(
    ctx: PipelineContext, session: AsyncSession, job_type: WeatherJob, run_id: int
) -> None:
    await ctx.queue.enqueue(
        session, job_type, RunPayload(run_id=run_id),
        singleton_key=singleton_key(job_type, run=run_id),
    )


async def seed_run(ctx: PipelineContext, payload: RunPayload, job: JobContext) -> None:
    """``weather.seed``: download the run's day-1 reference (the GFS forecast of its init)
    once into the host's cache, and decode it. The miners fetch their own GFS inputs."""
    async with ctx.session_factory.begin() as session:
        run = await db.get_run(session, payload.run_id)
        if run.status is RunStatus.CREATED:
            await db.transition_run(session, run.id, RunStatus.GFS_DOWNLOADING)
        elif run.status is not RunStatus.GFS_DOWNLOADING:
            if run.status is RunStatus.GFS_READY:
                await enqueue_run_job(ctx, session, WeatherJob.ORCHESTRATE, run.id)
            return
    await _download_gfs(ctx, run.gfs_init_time, run.commit_deadline)
    await _warm_day1_references(ctx, run.gfs_init_time, job)
    async with ctx.session_factory.begin() as session:
        if await db.transition_run(session, run.id, RunStatus.GFS_READY):
            await enqueue_run_job(ctx, session, WeatherJob.ORCHESTRATE, run.id)
    job.log.info("GFS %s published, day-1 reference ready", run.gfs_init_time)


async def _download_gfs(
    ctx: PipelineContext, init_time: datetime, commit_deadline: datetime
) -> None:
    now = ctx.clock()
    if now >= commit_deadline:
        raise Invalid(f"GFS cycle {init_time} was not available before the commit deadline")
    try:
        if not await ctx.gfs.is_cycle_complete(init_time):
            raise NotReady(min(now + GFS_RECHECK, commit_deadline), f"GFS {init_time} not published yet")
        await ctx.gfs.fetch_forecast(  # the fields day-1 scoring reads, nothing more
            init_time, ctx.day1_leads, variables=sorted({v for v, _ in DAY1_FIELDS}),
            levels=sorted({level for _, level in DAY1_FIELDS if level is not None}))
    except GfsUnavailable as error:
        raise NotReady(min(now + GFS_RECHECK, commit_deadline), str(error)) from error
    except (GfsTransportError, GfsMessageMissing, GfsDecodeError) as error:
        raise Retry(f"GFS download: {error}") from error


async def _warm_day1_references(ctx: PipelineContext, init_time: datetime, job: JobContext) -> None:
    """Decode the day-1 reference once for the run, before any miner's day-1 task needs it.
    Only a head start: a failure is logged and the first day-1 task fetches what is missing."""
    try:
        await ctx.forecasts.warm_day1_references(init_time)
    except Retry as error:
        job.log.warning("day-1 references not cached ahead (%s); scoring will fetch them", error)


async def orchestrate_run(ctx: PipelineContext, payload: RunPayload, job: JobContext) -> None:
    """``weather.orchestrate``: sync the metagraph, then one response row and one
    ``weather.query_miner`` per eligible miner and the run to ``querying_miners``, in one
    transaction. Held while the validator is paused: a miner's chain starts here."""
    async with ctx.session_factory() as session:
        run = await db.get_run(session, payload.run_id)
        if run.status is RunStatus.GFS_READY:
            await hold_if_paused(session, forced=ctx.settings.paused, what="fan-out",
                                 now=ctx.clock(), deadline=run.commit_deadline)
    try:
        neurons = await ctx.chain.metagraph()
    except ChainError as error:
        raise Retry(f"metagraph before fan-out: {error}") from error
    async with ctx.session_factory.begin() as session:
        run = await db.get_run(session, payload.run_id)
        if run.status is not RunStatus.GFS_READY:
            return
        await db.sync_miners(session, neurons)
        miners = await db.eligible_miners(session, ctx.eligibility)
        if not miners:
            await db.transition_run(session, run.id, RunStatus.ERROR, within={run.status},
                                    error="no eligible miners in the metagraph")
            job.log.warning("run %s: no eligible miners", run.id)
            return
        await db.create_responses(session, run.id, miners)
        responses = await db.responses_of_run(session, run.id)
        await ctx.queue.enqueue_many(session, [
            NewJob(
                WeatherJob.QUERY_MINER,
                ResponsePayload(run_id=run.id, response_id=rid, miner_hotkey=hotkey),
                singleton_key(WeatherJob.QUERY_MINER, run=run.id, hotkey=hotkey),
            )
            for rid, hotkey, status in responses
            if status is MinerResponseStatus.CREATED
        ])
        await db.transition_run(session, run.id, RunStatus.QUERYING_MINERS)
    job.log.info("run %s: querying %d miners", run.id, len(miners))


async def run_failed(session: AsyncSession, payload: RunPayload, reason: str) -> None:
    """Give-up hook of the run-level steps: the run ends in ``error`` with the reason."""
    await db.transition_run(session, payload.run_id, RunStatus.ERROR,
                            within=BEFORE_FAN_OUT_RUN_STATUSES, error=reason)

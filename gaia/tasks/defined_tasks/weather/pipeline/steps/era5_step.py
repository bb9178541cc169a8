"""``weather.era5_score``: ``day1_scored → era5_scoring → era5_scored``.

Waits (``NotReady``, no attempt used) until ERA5 covers the last scored lead; a run whose
truth is still missing ``truth_wait_limit`` after that ends in ``error``. Stores every ERA5
component and the run's roll-up (zero when day-1 failed or flagged a clone).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gaia.jobs.outcomes import Invalid, NotReady
from gaia.jobs.registry import JobContext
from gaia.tasks.defined_tasks.weather.pipeline.context import PipelineContext
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import ForecastRef
from gaia.tasks.defined_tasks.weather.pipeline.payloads import ResponsePayload
from gaia.tasks.defined_tasks.weather.pipeline.responses import move
from gaia.tasks.defined_tasks.weather.scoring.records import SUMMARY_VARIABLE, Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunStatus
from gaia.validator.database import validator_database_manager as db

S = MinerResponseStatus
STEP = "era5_score"
TRUTH_RECHECK = timedelta(hours=1)


async def score_era5(ctx: PipelineContext, payload: ResponsePayload, job: JobContext) -> None:
    async with ctx.session_factory() as session:
        target = await db.response_target(session, payload.response_id)
        run = await db.get_run(session, payload.run_id)
        day1 = {s.metric: s.value for s in await db.scores_of(
            session, run.id, target.hotkey, ScoreKind.DAY1) if s.variable == SUMMARY_VARIABLE}
    if target.status not in (S.DAY1_SCORED, S.ERA5_SCORING):
        return
    last_valid = run.gfs_init_time + timedelta(hours=max(ctx.era5_leads))
    if await ctx.forecasts.truth_available_until() < last_valid:
        await _wait_for_truth(ctx, payload, run.gfs_init_time)
    if target.status is S.DAY1_SCORED:
        async with ctx.session_factory.begin() as session:
            await move(session, payload, S.DAY1_SCORED, S.ERA5_SCORING)
    assert target.miner_job_id is not None and target.manifest_hash is not None
    forecast = ForecastRef(run.gfs_init_time, target.base_url, target.hotkey,
                           target.miner_job_id, target.manifest_hash)
    records = await ctx.forecasts.score_era5(
        forecast,
        day1_passed=day1.get(Metric.PASSED) == 1.0,
        day1_clone=day1.get(Metric.CLONE) == 1.0,
    )
    async with ctx.session_factory.begin() as session:
        await db.store_scores(session, run.id, target.hotkey, records)
        await move(session, payload, S.ERA5_SCORING, S.ERA5_SCORED)
    job.log.info("ERA5 scored: %d components", len(records))


async def _wait_for_truth(
    ctx: PipelineContext, payload: ResponsePayload, init_time: datetime
) -> None:
    now = ctx.clock()
    give_up_at = ctx.timing.truth_deadline(init_time, max(ctx.era5_leads))
    if now >= give_up_at:
        async with ctx.session_factory.begin() as session:
            await db.move_run(session, payload.run_id, db.ROLLED_UP_RUN_STATUSES, RunStatus.ERROR,
                              error=f"ERA5 truth still missing on {now:%Y-%m-%d}")
        raise Invalid("ERA5 truth never arrived")
    raise NotReady(min(now + TRUTH_RECHECK, give_up_at), "ERA5 does not cover the scored leads yet")

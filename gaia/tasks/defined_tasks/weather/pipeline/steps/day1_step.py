"""``weather.day1_score``: ``forecast_ready → day1_scoring → day1_scored``.

Scores the committed forecast against the GFS forecast from the same init, stores every
component, the verdict on the response row (with the move to ``day1_scored``, which the
roll-up reads) and the run's first roll-up (so the miner has a run score from day one), and
enqueues ``weather.era5_score`` to run when ERA5 will cover the first ERA5 lead. A rerun
after a crash continues from ``day1_scoring`` and overwrites the same score rows.
"""

from __future__ import annotations

from gaia.jobs.registry import JobContext
from gaia.tasks.defined_tasks.weather.pipeline.context import PipelineContext
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import SCORING_SHARE, ForecastRef
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import ResponsePayload
from gaia.tasks.defined_tasks.weather.pipeline.responses import enqueue_next, move
from gaia.tasks.defined_tasks.weather.pipeline.steps.era5_step import write_rollup
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus
from gaia.validator.database import validator_database_manager as db

S = MinerResponseStatus


async def score_day1(ctx: PipelineContext, payload: ResponsePayload, job: JobContext) -> None:
    async with ctx.session_factory.begin() as session:
        target = await db.response_target(session, payload.response_id)
        run = await db.get_run(session, payload.run_id)
        if target.status is S.FORECAST_READY:
            await move(session, payload, S.FORECAST_READY, S.DAY1_SCORING)
        elif target.status is not S.DAY1_SCORING:
            return
    assert target.miner_job_id is not None and target.manifest_hash is not None
    forecast = ForecastRef(run.gfs_init_time, target.base_url, target.hotkey,
                           target.miner_job_id, target.manifest_hash)
    outcome = await ctx.forecasts.score_day1(forecast, timeout_s=job.timeout_s * SCORING_SHARE)
    era5_at = ctx.timing.lead_due(run.gfs_init_time, min(ctx.era5_leads))
    async with ctx.session_factory.begin() as session:
        await db.store_scores(session, run.id, target.hotkey, outcome.records)
        await move(session, payload, S.DAY1_SCORING, S.DAY1_SCORED,
                   **db.verdict_columns(outcome.verdict))
        rollup = await write_rollup(session, run.id, target.hotkey, ctx.era5_leads)
        await enqueue_next(ctx, session, WeatherJob.ERA5_SCORE, payload, run_at=era5_at)
    passed = outcome.verdict.passed
    verdict = "passed" if passed else f"failed ({'; '.join(outcome.reasons)})"
    job.log.info("day-1 %s%s; run score %.4f", verdict,
                 ", clone" if outcome.verdict.clone else "", rollup.score)

"""``weather.era5_score``: ``day1_scored → era5_scoring → era5_scored``, one lead at a time.

First due when ERA5 will cover the first lead. The first run moves the response to
``era5_scoring`` before anything else, so an ERA5 outage can only fail it (a legal move),
never strand it. Each run scores every lead ERA5 now covers that is not stored yet, stores
those leads' components (earlier leads are never rewritten) and rewrites the run's roll-up
from every stored lead and the day-1 verdict. When leads remain it waits (``NotReady``, no
attempt used; after a scored lead with fresh attempts) until the next lead is due; a lead
whose truth is still missing ``truth_wait_limit`` after its valid time ends the run in
``error``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gaia.jobs.outcomes import INVALID_PREFIX, Invalid, NotReady
from gaia.jobs.registry import JobContext
from gaia.tasks.defined_tasks.weather.pipeline.context import PipelineContext
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import SCORING_SHARE, ForecastRef
from gaia.tasks.defined_tasks.weather.pipeline.payloads import ResponsePayload
from gaia.tasks.defined_tasks.weather.pipeline.responses import GiveUpHook, move
from gaia.tasks.defined_tasks.weather.scoring.records import Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.scoring.rollup import LeadSkill, Rollup, roll_up
from gaia.tasks.defined_tasks.weather.states import (
    ROLLED_UP_RUN_STATUSES,
    MinerResponseStatus,
    RunStatus,
)
from gaia.validator.database import validator_database_manager as db

S = MinerResponseStatus
TRUTH_RECHECK = timedelta(hours=1)


def give_up_withdrawn(ctx: PipelineContext, fail: GiveUpHook) -> GiveUpHook:
    """The ERA5 step's give-up hook: ``fail`` the response, and when the miner is at fault
    (an ``Invalid`` outcome: files gone, altered, malformed) count its unscored leads as
    withheld, so a forecast withdrawn after day-1 cannot keep its provisional score
    (SCORING.md §5). Not when the run is in error: ERA5 never came, the validator's trouble."""

    async def hook(session: AsyncSession, payload: ResponsePayload, reason: str) -> None:
        await fail(session, payload, reason)
        run = await db.get_run(session, payload.run_id)
        if reason.startswith(INVALID_PREFIX) and run.status is not RunStatus.ERROR:
            await write_rollup(session, payload.run_id, payload.miner_hotkey, ctx.era5_leads,
                               rest_withheld=True)

    return hook


async def score_era5(ctx: PipelineContext, payload: ResponsePayload, job: JobContext) -> None:
    async with ctx.session_factory.begin() as session:
        target = await db.response_target(session, payload.response_id)
        run = await db.get_run(session, payload.run_id)
        if target.status is S.DAY1_SCORED:
            await move(session, payload, S.DAY1_SCORED, S.ERA5_SCORING)
        elif target.status is not S.ERA5_SCORING:
            return
        stored = await db.scored_leads(session, run.id, target.hotkey, ScoreKind.ERA5)
    pending = [lead for lead in ctx.era5_leads if lead not in stored]
    covered_until = await ctx.forecasts.truth_available_until()
    due = [lead for lead in pending
           if run.gfs_init_time + timedelta(hours=lead) <= covered_until]
    remaining = [lead for lead in pending if lead not in due]
    if due:
        assert target.miner_job_id is not None and target.manifest_hash is not None
        forecast = ForecastRef(run.gfs_init_time, target.base_url, target.hotkey,
                               target.miner_job_id, target.manifest_hash)
        records = await ctx.forecasts.score_era5_leads(
            forecast, due, timeout_s=job.timeout_s * SCORING_SHARE)
        async with ctx.session_factory.begin() as session:
            await db.store_scores(session, run.id, target.hotkey, records)
            rollup = await write_rollup(session, run.id, target.hotkey, ctx.era5_leads)
            if not remaining:
                await move(session, payload, S.ERA5_SCORING, S.ERA5_SCORED)
        job.log.info("ERA5 leads %s h scored (%d components); run score %.4f over %.0f%% of "
                     "the lead weight", due, len(records), rollup.score, 100 * rollup.era5_share)
    if remaining:
        await _wait_for_truth(ctx, payload, run.gfs_init_time, remaining[0], progressed=bool(due))


async def write_rollup(
    session: AsyncSession, run_id: int, hotkey: str, all_leads: Sequence[int],
    *, rest_withheld: bool = False,
) -> Rollup:
    """Recompute and store the run score from the day-1 verdict on the response row and the
    stored ERA5 skills (``rest_withheld``: the unscored leads count at the skill floor,
    SCORING.md §5)."""
    verdict = await db.day1_verdict(session, run_id, hotkey)
    skills = [LeadSkill(*row) for row in await db.metric_rows(
        session, run_id, hotkey, ScoreKind.ERA5, Metric.SKILL)]
    rollup = roll_up(skills, verdict, all_leads=all_leads, rest_withheld=rest_withheld)
    await db.store_scores(session, run_id, hotkey, rollup.records())
    return rollup


async def _wait_for_truth(
    ctx: PipelineContext, payload: ResponsePayload, init_time: datetime, lead: int,
    *, progressed: bool,
) -> None:
    """Wait for ``lead`` (the next unscored one), or end the run when its truth is too late."""
    now = ctx.clock()
    give_up_at = ctx.timing.truth_deadline(init_time, lead)
    if now >= give_up_at:
        async with ctx.session_factory.begin() as session:
            await db.transition_run(session, payload.run_id, RunStatus.ERROR,
                                    within=ROLLED_UP_RUN_STATUSES,
                                    error=f"ERA5 truth for lead {lead} h still missing on "
                                          f"{now:%Y-%m-%d}")
        raise Invalid(f"ERA5 truth for lead {lead} h never arrived")
    until = min(max(ctx.timing.lead_due(init_time, lead), now + TRUTH_RECHECK), give_up_at)
    raise NotReady(until, f"ERA5 does not cover lead {lead} h yet", progressed=progressed)

"""Operator commands that need the validator's wallet: rescoring a run and weights."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.chain.factory import build_chain_client
from gaia.config import Settings
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import ForecastRef
from gaia.tasks.defined_tasks.weather.pipeline.scoring_service import (
    ScoringEnvironment,
    ScoringService,
)
from gaia.tasks.defined_tasks.weather.pipeline.steps.era5_step import write_rollup
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus
from gaia.tasks.defined_tasks.weather.variables import ERA5_LEAD_HOURS
from gaia.validator.database import validator_database_manager as db
from gaia.validator.periodic import package_version_key
from gaia.validator.runtime import load_wallet
from gaia.validator.weights import weights_to_submit


async def rescore_run(
    settings: Settings, factory: async_sessionmaker[AsyncSession], run_id: int, hotkey: str | None
) -> str:
    """Recompute and overwrite the ERA5 scores and roll-up of every ERA5-scored miner."""
    wallet, _ = load_wallet(settings)
    async with SignedClient(wallet, timeout=settings.data.http_timeout_s) as signed:
        service = ScoringService(ScoringEnvironment.from_settings(settings), signed, processes=0)
        async with factory() as session:
            run = await db.get_run(session, run_id)
            responses = await db.responses_of_run(session, run_id)
        done = []
        for response_id, response_hotkey, status in responses:
            if status is not MinerResponseStatus.ERA5_SCORED or hotkey not in (None, response_hotkey):
                continue
            async with factory() as session:
                target = await db.response_target(session, response_id)
            assert target.miner_job_id is not None
            forecast = ForecastRef(run.gfs_init_time, target.base_url, response_hotkey,
                                   target.miner_job_id, target.manifest_hash)
            records = await service.score_era5_leads(forecast, ERA5_LEAD_HOURS)
            async with factory.begin() as session:
                await db.store_scores(session, run_id, response_hotkey, records)
                await write_rollup(session, run_id, response_hotkey, ERA5_LEAD_HOURS)
            done.append(response_hotkey)
    return f"rescored {len(done)} miners of run {run_id}: {', '.join(done) or 'none'}"


async def show_weights(
    settings: Settings, factory: async_sessionmaker[AsyncSession], *, submit: bool
) -> str:
    window = settings.validator.weights_window_runs
    async with factory() as session:
        runs = await db.latest_scored_runs(session, window)
        registered = await db.registrations(session)
    chosen = weights_to_submit(runs, registered, window=window,
                               fallback_uid=settings.validator.fallback_weight_uid)
    vector = chosen.vector
    lines = [f"fallback: {chosen.fallback_reason}"] if chosen.fallback_reason else []
    lines += [f"uid {uid}: {weight:.6f}" for uid, weight in zip(vector.uids, vector.weights,
                                                               strict=True)]
    if submit:
        wallet, hotkey = load_wallet(settings)
        chain = build_chain_client(settings.chain, hotkey=hotkey, wallet=wallet)
        confirmation = await chain.set_weights(vector.uids, vector.weights, package_version_key())
        lines.append(f"submitted: {confirmation}")
    return "\n".join(lines)

"""Progressive ERA5 scoring through the real steps, a real miner store and a local archive.

The archive is a copy whose ERA5 ``valid_time_stop`` the test moves, served by its own
loopback server (stopped and restarted for the outage); the clock is injected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from gaia.chain.client import Neuron
from gaia.config import DataSettings, Settings, WalletSettings
from gaia.database.validator_schema import WeatherMinerResponse
from gaia.jobs.outcomes import INVALID_PREFIX, Invalid, NotReady, Retry
from gaia.jobs.policy import resolve
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.data.archive import ArchiveInfo
from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource
from gaia.tasks.defined_tasks.weather.forecast_store import ForecastStoreWriter
from gaia.tasks.defined_tasks.weather.inference import ForecastInputs, get_model
from gaia.tasks.defined_tasks.weather.pipeline.context import PipelineContext
from gaia.tasks.defined_tasks.weather.pipeline.job_types import RETRY_CONFIG, WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import ResponsePayload
from gaia.tasks.defined_tasks.weather.pipeline.responses import give_up_as
from gaia.tasks.defined_tasks.weather.pipeline.scoring_service import (
    ScoringEnvironment,
    ScoringService,
)
from gaia.tasks.defined_tasks.weather.pipeline.steps import day1_step, era5_step
from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG
from gaia.tasks.defined_tasks.weather.scoring.day1 import Day1Verdict
from gaia.tasks.defined_tasks.weather.scoring.records import ScoreKind
from gaia.tasks.defined_tasks.weather.scoring.rollup import DEFAULT_VARIABLE_WEIGHTS
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus as S
from gaia.tasks.defined_tasks.weather.states import RunMode, RunStatus
from gaia.validator.database import validator_database_manager as db
from tests.fixtures.forecast_server import ForecastServer, running_forecast_server
from tests.fixtures.forecast_store import new_keypair
from tests.fixtures.miner import free_port, make_wallet
from tests.fixtures.pipeline import job_context, pipeline_context

pytestmark = pytest.mark.timeout(600)

JOB_ID = "job-progressive"
LEADS = tuple(range(24, 241, 24))
ERA5_POLICY = RETRY_CONFIG[WeatherJob.ERA5_SCORE]


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture(scope="module")
def era5_copy(archive: ArchiveInfo, tmp_path_factory: pytest.TempPathFactory) -> ArchiveInfo:
    root = tmp_path_factory.mktemp("archive-copy")
    shutil.copytree(archive.root, root, dirs_exist_ok=True)
    return dataclasses.replace(archive, root=root)


def set_era5_stop(archive: ArchiveInfo, stop: datetime) -> None:
    """Move the store's ``valid_time_stop`` (root attrs, consolidated and plain)."""
    store = archive.root / archive.era5_path
    stamp = stop.strftime("%Y-%m-%dT%H:%M:%S")
    consolidated = json.loads((store / ".zmetadata").read_text())
    consolidated["metadata"][".zattrs"]["valid_time_stop"] = stamp
    (store / ".zmetadata").write_text(json.dumps(consolidated))
    attrs = json.loads((store / ".zattrs").read_text())
    attrs["valid_time_stop"] = stamp
    (store / ".zattrs").write_text(json.dumps(attrs))


@pytest.fixture(scope="module")
def served(era5_copy: ArchiveInfo) -> Iterator[ArchiveServer]:
    with ArchiveServer(era5_copy.root) as server:
        yield server


@pytest.fixture(scope="module")
def miner_store(
    era5_copy: ArchiveInfo, served: ArchiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ForecastServer, str]]:
    """A signed spectral-advection forecast of the archive's first init, served like a miner."""
    init = era5_copy.init_times[0]
    root = tmp_path_factory.mktemp("miner-store")

    async def inputs() -> ForecastInputs:
        async with GfsSource(era5_copy.gfs_base_url(served.url), root / "cache") as gfs:
            return ForecastInputs.from_dataset(await gfs.fetch_inputs(init))

    state = asyncio.run(inputs())
    leads = (6, 12, *LEADS)
    keypair = new_keypair()
    writer = ForecastStoreWriter(root / "store", grid=state.grid,
                                 init_time=np.datetime64(init.replace(tzinfo=None), "ns"),
                                 variables=state.variables, levels=state.levels, lead_hours=leads)
    for lead, forecast in get_model("spectral_advection").forecast(state, leads):
        writer.write_lead(lead, forecast)
    signed = writer.finalize(JOB_ID, keypair)
    with running_forecast_server(keypair.ss58_address) as server:
        server.stores[JOB_ID] = root / "store"
        yield server, signed.manifest_hash


def context(factory: async_sessionmaker, root: Path, archive: ArchiveInfo, url: str,
            clock: Clock) -> PipelineContext:
    ctx = pipeline_context(factory, root, clock=clock)
    wallet = make_wallet(root / "scorer-wallets", "validator")
    env = ScoringEnvironment.from_settings(Settings(
        wallet=WalletSettings(name="validator", path=root / "scorer-wallets"),
        data=DataSettings(
            cache_dir=root / "gfs-cache", reference_cache_dir=root / "references",
            gfs_base_url=archive.gfs_base_url(url), gfs_fallback_url=None,
            era5_url=archive.era5_url(url), climatology_url=archive.climatology_url(url),
        ),
    ))
    service = ScoringService(env, SignedClient(wallet, timeout=10), processes=0, clock=clock)
    return dataclasses.replace(ctx, forecasts=service)


async def new_response(
    factory: async_sessionmaker, init: datetime, server: ForecastServer, manifest_hash: str,
    status: S,
) -> ResponsePayload:
    port = int(server.base_url.rsplit(":", 1)[1])
    async with factory.begin() as session:
        await db.sync_miners(session, [Neuron(1, server.miner_hotkey, "5Cold", "127.0.0.1", port,
                                              0.0, False)])
        run_id, _ = await db.create_run(session, init, RunMode.LIVE, init + timedelta(hours=9),
                                        grid_deg=GRID_DEG)
        await db.admin_override_run(session, run_id, {RunStatus.CREATED}, RunStatus.SCORING_DAY1)
        response_id = await db.insert_response(session, run_id, server.miner_hotkey, 1)
        await session.execute(update(WeatherMinerResponse)
                              .where(WeatherMinerResponse.id == response_id)
                              .values(status=status, miner_job_id=JOB_ID,
                                      manifest_hash=manifest_hash))
        await db.refresh_run_status(session, run_id)
    return ResponsePayload(run_id=run_id, response_id=response_id,
                           miner_hotkey=server.miner_hotkey)


async def status_of(factory: async_sessionmaker, payload: ResponsePayload) -> tuple[S, str | None]:
    async with factory() as session:
        row = await session.get(WeatherMinerResponse, payload.response_id)
        return row.status, row.failure_reason


async def rollup_of(factory: async_sessionmaker, payload: ResponsePayload) -> dict[str, float]:
    async with factory() as session:
        rows = await db.scores_of(session, payload.run_id, payload.miner_hotkey, ScoreKind.ROLLUP)
    return {r.metric: r.value for r in rows}


async def era5_rows(factory: async_sessionmaker, payload: ResponsePayload) -> dict:
    """(variable, level, lead, metric) -> (value, xmin): xmin changes when a row is rewritten."""
    async with factory() as session:
        rows = await session.execute(text(
            "SELECT variable, level, lead_hours, metric, value, xmin::text FROM "
            "weather_miner_scores WHERE run_id = :run AND kind = 'era5'"), {"run": payload.run_id})
    return {(v, lev, lead, m): (value, xmin) for v, lev, lead, m, value, xmin in rows}


def todays_formula(rows: dict) -> float:
    """(1 + Σ W_v/L_v·clip(skill) / Σ W_v/L_v) / 2 over every stored ERA5 skill (SCORING.md §5)."""
    skills = {(v, lev, lead): value for (v, lev, lead, m), (value, _) in rows.items()
              if m == "skill"}
    levels = {v: len({lev for vv, lev, _ in skills if vv == v}) for v, _, _ in skills}
    weights = {key: DEFAULT_VARIABLE_WEIGHTS[key[0]] / levels[key[0]] for key in skills}
    total = sum(weights[k] * min(max(s, -1.0), 1.0) for k, s in skills.items())
    return (1 + total / sum(weights.values())) / 2


async def run_era5(ctx: PipelineContext, payload: ResponsePayload) -> NotReady | None:
    try:
        await era5_step.score_era5(ctx, payload, job_context(ctx.session_factory, 1, "era5"))
    except NotReady as waiting:
        return waiting
    return None


async def test_leads_are_scored_as_era5_covers_them(
    session_factory: async_sessionmaker, era5_copy: ArchiveInfo, served: ArchiveServer,
    miner_store: tuple[ForecastServer, str], tmp_path: Path,
) -> None:
    server, manifest_hash = miner_store
    init = era5_copy.init_times[0]
    clock = Clock(init + timedelta(hours=9))
    ctx = context(session_factory, tmp_path, era5_copy, served.url, clock)
    payload = await new_response(session_factory, init, server, manifest_hash, S.FORECAST_READY)

    await day1_step.score_day1(ctx, payload, job_context(session_factory, 1, "day1"))
    async with session_factory() as session:
        day1 = {s.metric: s.value for s in await db.scores_of(
            session, payload.run_id, payload.miner_hotkey, ScoreKind.DAY1) if s.variable == "all"}
        era5_job = await session.scalar(text(
            "SELECT run_at FROM validator_jobs WHERE job_type = 'weather.era5_score'"))
    assert day1["passed"] == 1.0 and day1["clone"] == 0.0
    async with session_factory() as session:  # the verdict on the row agrees with the audit
        verdict = await db.day1_verdict(session, payload.run_id, payload.miner_hotkey)
    assert verdict == Day1Verdict(day1["score"], passed=True, clone=False)
    # (c) a run score on day one: S = d, score = (1 + d) / 2, no ERA5 lead yet
    assert await rollup_of(session_factory, payload) == pytest.approx(
        {"score": (1 + day1["score"]) / 2, "skill": day1["score"], "coverage": 0.0})
    assert era5_job == init + timedelta(hours=24) + timedelta(days=5)  # the first lead's due time

    # ERA5 covers lead 24 h only
    set_era5_stop(era5_copy, init + timedelta(hours=30))
    clock.moment = init + timedelta(days=6)
    waiting = await run_era5(ctx, payload)
    assert waiting is not None and waiting.progressed
    assert waiting.until == init + timedelta(hours=48) + timedelta(days=5)
    assert (await status_of(session_factory, payload))[0] is S.ERA5_SCORING
    first = await era5_rows(session_factory, payload)
    assert {lead for _, _, lead, _ in first} == {24}
    one = await rollup_of(session_factory, payload)
    skill_24 = 2 * todays_formula(first) - 1
    assert one["coverage"] == pytest.approx(0.1)
    assert one["skill"] == pytest.approx(0.9 * day1["score"] + 0.1 * skill_24)
    assert one["score"] == pytest.approx((1 + one["skill"]) / 2)

    # nothing new: a wait of at least the recheck, no attempt reset, nothing rewritten
    clock.moment = init + timedelta(days=7, hours=1)
    waiting = await run_era5(ctx, payload)
    assert waiting is not None and not waiting.progressed
    assert waiting.until == clock.moment + era5_step.TRUTH_RECHECK

    # three more leads at once; lead 24 h rows stay as they were
    set_era5_stop(era5_copy, init + timedelta(hours=96))
    clock.moment = init + timedelta(days=9)
    waiting = await run_era5(ctx, payload)
    assert waiting is not None and waiting.progressed
    assert waiting.until == init + timedelta(hours=120) + timedelta(days=5)
    second = await era5_rows(session_factory, payload)
    assert {lead for _, _, lead, _ in second} == {24, 48, 72, 96}
    assert {k: v for k, v in second.items() if k[2] == 24} == first
    assert (await rollup_of(session_factory, payload))["coverage"] == pytest.approx(0.4)

    # the rest: era5_scored, and the run score is exactly today's formula
    set_era5_stop(era5_copy, era5_copy.truth_until)
    clock.moment = init + timedelta(days=16)
    assert await run_era5(ctx, payload) is None
    assert (await status_of(session_factory, payload))[0] is S.ERA5_SCORED
    final = await era5_rows(session_factory, payload)
    assert {lead for _, _, lead, _ in final} == set(LEADS)
    assert {k: v for k, v in final.items() if k[2] in (24, 48, 72, 96)} == second
    rollup = await rollup_of(session_factory, payload)
    assert rollup["coverage"] == 1.0
    assert rollup["score"] == pytest.approx(todays_formula(final), abs=1e-12)
    async with session_factory() as session:
        assert (await db.get_run(session, payload.run_id)).status is RunStatus.COMPLETED


DAY1_VERDICT = Day1Verdict(0.7, passed=True, clone=False)


async def day1_scored_response(
    factory: async_sessionmaker, init: datetime, miner_store: tuple[ForecastServer, str]
) -> ResponsePayload:
    payload = await new_response(factory, init, *miner_store, S.DAY1_SCORED)
    async with factory.begin() as session:
        await session.execute(update(WeatherMinerResponse)
                              .where(WeatherMinerResponse.id == payload.response_id)
                              .values(**db.verdict_columns(DAY1_VERDICT)))
    return payload


async def attempt(ctx: PipelineContext, payload: ResponsePayload, attempts: int):
    """One run of the job as the worker resolves it."""
    try:
        outcome = await run_era5(ctx, payload)
    except Retry as error:
        outcome = error
    return outcome, resolve(outcome, attempts=attempts, max_attempts=ERA5_POLICY.max_attempts,
                            timeout_s=ERA5_POLICY.timeout_s, policy=ERA5_POLICY)


async def test_an_era5_outage_of_a_few_hours_then_back_completes(
    session_factory: async_sessionmaker, era5_copy: ArchiveInfo,
    miner_store: tuple[ForecastServer, str], tmp_path: Path,
) -> None:
    init = era5_copy.init_times[0]
    set_era5_stop(era5_copy, era5_copy.truth_until)
    clock = Clock(init + timedelta(days=16))
    port = free_port()
    ctx = context(session_factory, tmp_path, era5_copy, f"http://127.0.0.1:{port}", clock)
    payload = await day1_scored_response(session_factory, init, miner_store)
    attempts = 0
    for _ in range(3):  # the store is down: three hourly attempts fail, none is the last
        attempts += 1
        outcome, resolution = await attempt(ctx, payload, attempts)
        assert isinstance(outcome, Retry) and resolution.attempts == attempts
        assert resolution.status.value == "queued" and resolution.delay_s == 3600
        assert (await status_of(session_factory, payload))[0] is S.ERA5_SCORING
    with ArchiveServer(era5_copy.root, port=port):
        outcome, resolution = await attempt(ctx, payload, attempts + 1)
    assert outcome is None and resolution.status.value == "succeeded"
    assert (await status_of(session_factory, payload))[0] is S.ERA5_SCORED
    assert (await rollup_of(session_factory, payload))["coverage"] == 1.0


async def test_an_era5_outage_past_the_attempts_fails_the_response(
    session_factory: async_sessionmaker, era5_copy: ArchiveInfo,
    miner_store: tuple[ForecastServer, str], tmp_path: Path,
) -> None:
    init = era5_copy.init_times[0]
    clock = Clock(init + timedelta(days=6))
    ctx = context(session_factory, tmp_path, era5_copy, f"http://127.0.0.1:{free_port()}", clock)
    payload = await day1_scored_response(session_factory, init, miner_store)
    for attempts in range(1, ERA5_POLICY.max_attempts + 1):
        outcome, resolution = await attempt(ctx, payload, attempts)
        assert isinstance(outcome, Retry)
    assert resolution.status.value == "failed"
    async with session_factory.begin() as session:  # what the worker's give-up does
        give_up = give_up_as(WeatherJob.ERA5_SCORE.step, "ERA5 scoring failed")
        await give_up(session, payload, resolution.error)
    status, reason = await status_of(session_factory, payload)
    assert status is S.FAILED
    assert reason.startswith("ERA5 scoring failed (gave up after 5 attempts: reference store:")
    async with session_factory() as session:
        response = await session.scalar(select(WeatherMinerResponse).where(
            WeatherMinerResponse.id == payload.response_id))
        assert response.failed_step == "era5_score"
        assert (await db.get_run(session, payload.run_id)).status is RunStatus.COMPLETED


async def test_a_forecast_withdrawn_after_day1_loses_its_provisional_score(
    session_factory: async_sessionmaker, era5_copy: ArchiveInfo,
    miner_store: tuple[ForecastServer, str], tmp_path: Path,
) -> None:
    init = era5_copy.init_times[0]
    clock = Clock(init + timedelta(days=6))  # ERA5 covers lead 24 h: the store must be read
    with ArchiveServer(era5_copy.root) as archive:
        ctx = context(session_factory, tmp_path, era5_copy, archive.url, clock)
        payload = await day1_scored_response(session_factory, init, miner_store)
        async with session_factory.begin() as session:
            provisional = await era5_step.write_rollup(
                session, payload.run_id, payload.miner_hotkey, ctx.era5_leads)
        server, _ = miner_store
        store = server.stores.pop(JOB_ID)  # the miner withdraws its forecast
        try:
            with pytest.raises(Invalid) as withdrawn:
                await run_era5(ctx, payload)
        finally:
            server.stores[JOB_ID] = store
    hook = era5_step.give_up_withdrawn(
        ctx, give_up_as(WeatherJob.ERA5_SCORE.step, "ERA5 scoring failed"))
    async with session_factory.begin() as session:  # what the worker's give-up does
        await hook(session, payload, INVALID_PREFIX + withdrawn.value.reason)
    assert (await status_of(session_factory, payload))[0] is S.FAILED
    rollup = await rollup_of(session_factory, payload)
    # nothing of ERA5 was scored: S = −1, below the day-1 score it held provisionally
    assert rollup["skill"] == -1.0 and rollup["score"] < provisional.score

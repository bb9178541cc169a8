"""Which runs make weights (``latest_scored_runs``), and weights set on a validator's first day."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker

from gaia.chain.client import Neuron
from gaia.chain.static import StaticChainClient
from gaia.database.validator_schema import Miner, WeatherMinerResponse
from gaia.jobs.registry import JobContext, JobLogger
from gaia.tasks.defined_tasks.weather.pipeline.payloads import PeriodicPayload
from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG
from gaia.tasks.defined_tasks.weather.scoring.records import ComponentRecord, Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus as S
from gaia.tasks.defined_tasks.weather.states import RunMode, RunStatus
from gaia.validator import periodic
from gaia.validator.database import validator_database_manager as db
from tests.fixtures.miner import write_chain

DAY = datetime(2026, 11, 1, 12, tzinfo=UTC)


async def add_run(
    factory: async_sessionmaker, day: int, statuses: dict[str, S], scores: dict[str, float],
    mode: RunMode = RunMode.LIVE,
) -> int:
    """A run of ``DAY + day`` days whose responses have ``statuses`` and roll-ups ``scores``."""
    init = DAY + timedelta(days=day)
    async with factory.begin() as session:
        run_id, _ = await db.create_run(session, init, mode, init + timedelta(hours=9),
                                        grid_deg=GRID_DEG)
        await db.admin_override_run(session, run_id, {RunStatus.CREATED},
                                    RunStatus.QUERYING_MINERS)
        for uid, (hotkey, status) in enumerate(statuses.items()):
            response_id = await db.insert_response(session, run_id, hotkey, uid)
            await session.execute(update(WeatherMinerResponse)
                                  .where(WeatherMinerResponse.id == response_id)
                                  .values(status=status))
        for hotkey, score in scores.items():
            await db.store_scores(session, run_id, hotkey, [
                ComponentRecord(ScoreKind.ROLLUP, "all", 0, 0, Metric.SCORE, score)])
        await db.refresh_run_status(session, run_id)
    return run_id


async def test_latest_scored_runs_are_live_runs_past_day1_newest_first(
    session_factory: async_sessionmaker,
) -> None:
    done = await add_run(session_factory, 0, {"A": S.ERA5_SCORED}, {"A": 0.7})
    young = await add_run(session_factory, 1, {"A": S.DAY1_SCORED, "B": S.FAILED}, {"A": 0.8})
    scoring = await add_run(session_factory, 2, {"A": S.ERA5_SCORING, "B": S.DAY1_SCORED},
                            {"A": 0.6, "B": 0.5})
    await add_run(session_factory, 3, {"A": S.DAY1_SCORED, "B": S.DAY1_SCORING}, {"A": 0.9})
    await add_run(session_factory, 4, {"A": S.INFERENCE_RUNNING}, {})
    await add_run(session_factory, 5, {"A": S.DAY1_SCORED}, {"A": 1.0}, mode=RunMode.HINDCAST)
    async with session_factory() as session:
        statuses = [(await db.get_run(session, r)).status for r in (done, young, scoring)]
        runs = await db.latest_scored_runs(session, window=7)
        window_two = await db.latest_scored_runs(session, window=2)
    assert statuses == [RunStatus.COMPLETED, RunStatus.AWAITING_ERA5, RunStatus.SCORING_ERA5]
    # day 3 is still in day-1, day 4 before it, day 5 a hindcast
    assert [(r.run_id, dict(r.scores)) for r in runs] == [
        (scoring, {"A": 0.6, "B": 0.5}), (young, {"A": 0.8}), (done, {"A": 0.7})]
    assert [r.run_id for r in window_two] == [scoring, young]


async def test_weights_are_set_on_the_first_day(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    await add_run(session_factory, 0, {"A": S.DAY1_SCORED, "B": S.DAY1_SCORED, "C": S.FAILED},
                  {"A": 0.8, "B": 0.6})
    chain_path = write_chain(tmp_path / "neurons.json", [
        Neuron(uid, hotkey, "5Cold", None, None, 0.0, False) for uid, hotkey in enumerate("ABC")])
    async with session_factory.begin() as session:
        await db.sync_miners(session, [Neuron(u, h, "5Cold", None, None, 0.0, False)
                                       for u, h in enumerate("ABC")])
        # registered before the run asked its miners
        await session.execute(update(Miner).values(registered_at=DAY - timedelta(days=1)))
    chain = StaticChainClient(chain_path, hotkey="5Validator")
    ctx = periodic.PeriodicContext(session_factory, chain, weights_window=7,
                                   fallback_uid=0)
    await periodic.submit_weights(ctx, PeriodicPayload(slot="day-one"), job(session_factory))
    sent = json.loads((chain.weights_dir / "5Validator.json").read_text())
    # averages over the window of 7: A 0.8/7, B 0.6/7, C 0; squared and normalised: 0.64 : 0.36
    assert sent["uids"] == [0, 1, 2]
    assert sent["weights"] == pytest.approx([0.64, 0.36, 0.0])


def job(factory: async_sessionmaker) -> JobContext:
    extra = {"job_id": 1, "job_type": periodic.SET_WEIGHTS, "attempt": 1, "subject": ""}
    return JobContext(1, periodic.SET_WEIGHTS, 1, 3, 60.0, factory,
                      JobLogger(logging.getLogger("tests.weights"), extra))

"""The weights job never skips: the fallback when no score is positive, and weights while paused."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker

from gaia.chain.client import Neuron
from gaia.chain.static import StaticChainClient
from gaia.database.validator_schema import Miner
from gaia.tasks.defined_tasks.weather.pipeline.payloads import PeriodicPayload
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus as S
from gaia.validator import pause, periodic
from gaia.validator.database import validator_database_manager as db
from tests.fixtures.miner import write_chain
from tests.integration.validator.test_weights_from_day_one import DAY, add_run, job

NEURONS = [Neuron(uid, hotkey, "5Cold", None, None, 0.0, False) for uid, hotkey in
           enumerate(["5Owner", "A", "B"])]


async def _submit(factory: async_sessionmaker, tmp_path: Path, fallback_uid: int) -> dict:
    chain = StaticChainClient(write_chain(tmp_path / "neurons.json", NEURONS), hotkey="5Val")
    async with factory.begin() as session:
        await db.sync_miners(session, NEURONS)
        await session.execute(update(Miner).values(registered_at=DAY - timedelta(days=1)))
    ctx = periodic.PeriodicContext(factory, chain, weights_window=7, fallback_uid=fallback_uid)
    await periodic.submit_weights(ctx, PeriodicPayload(slot="s"), job(factory))
    return json.loads((chain.weights_dir / "5Val.json").read_text())


async def test_a_fresh_database_submits_the_fallback_and_says_why(
    session_factory: async_sessionmaker, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="tests.weights"):
        sent = await _submit(session_factory, tmp_path, fallback_uid=2)
    assert (sent["uids"], sent["weights"]) == ([2], [1.0])
    assert ("fallback weights: no live run has day-1 scores yet: the whole weight goes to "
            "fallback uid 2") in caplog.text


async def test_no_positive_score_submits_the_fallback(
    session_factory: async_sessionmaker, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    await add_run(session_factory, 0, {"A": S.DAY1_SCORED, "B": S.FAILED}, {"A": -0.3})
    with caplog.at_level(logging.WARNING, logger="tests.weights"):
        sent = await _submit(session_factory, tmp_path, fallback_uid=0)
    assert (sent["uids"], sent["weights"]) == ([0], [1.0])
    assert "no registered hotkey has a positive score over the latest 1 runs" in caplog.text


async def test_a_paused_validator_still_submits_weights_from_its_scores(
    session_factory: async_sessionmaker, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    await add_run(session_factory, 0, {"A": S.DAY1_SCORED, "B": S.DAY1_SCORED}, {"A": 0.8, "B": 0.6})
    async with session_factory.begin() as session:
        await pause.pause(session, "maintenance", DAY)
    with caplog.at_level(logging.WARNING, logger="tests.weights"):
        sent = await _submit(session_factory, tmp_path, fallback_uid=0)
    assert sent["uids"] == [0, 1, 2]
    assert sent["weights"] == pytest.approx([0.0, 0.64, 0.36])
    assert "fallback" not in caplog.text

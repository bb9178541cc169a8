"""The weights job on a real chain client (the SDK over the stand-in): each chain refusal is a
typed job outcome with the chain's words, and a rate-limited job succeeds when retried."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import bittensor as bt
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker

from gaia.database.validator_schema import Miner
from gaia.jobs.outcomes import Invalid, Retry
from gaia.tasks.defined_tasks.weather.pipeline.payloads import PeriodicPayload
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus as S
from gaia.validator import periodic
from gaia.validator.database import validator_database_manager as db
from gaia.validator.weights import ChosenWeights, WeightVector
from tests.fixtures.chain_standin import standin_init
from tests.fixtures.standin_subnet import StandInSubnet, seed_subnet
from tests.integration.validator.test_weights_from_day_one import DAY, add_run, job


@pytest.fixture
async def scored(
    session_factory: async_sessionmaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> StandInSubnet:
    """A subnet on the stand-in and one scored run for its two miners."""
    monkeypatch.setenv("BTCLI_TOKEN_SYMBOLS_CACHE", str(tmp_path / "symbols.json"))
    subnet = seed_subnet(tmp_path)
    monkeypatch.setattr(bt.Subtensor, "__init__", standin_init(subnet.state_path))
    neurons = await subnet.client(subnet.validator).metagraph()
    await add_run(session_factory, 0, {n.hotkey: S.DAY1_SCORED for n in neurons[1:]},
                  {neurons[1].hotkey: 0.8, neurons[2].hotkey: 0.4})
    async with session_factory.begin() as session:
        await db.sync_miners(session, neurons)
        await session.execute(update(Miner).values(registered_at=DAY - timedelta(days=1)))
    return subnet


def _context(factory: async_sessionmaker, subnet: StandInSubnet,
             wallet: bt.Wallet | None = None) -> periodic.PeriodicContext:
    chain = subnet.client(wallet or subnet.validator)
    return periodic.PeriodicContext(factory, chain, weights_window=7, fallback_uid=0)


async def _submit(factory: async_sessionmaker, ctx: periodic.PeriodicContext) -> None:
    await periodic.submit_weights(ctx, PeriodicPayload(slot="s"), job(factory))


async def test_a_rate_limited_weights_job_retries_when_the_chain_says(
    session_factory: async_sessionmaker, scored: StandInSubnet
) -> None:
    ctx = _context(session_factory, scored)
    await _submit(session_factory, ctx)
    with pytest.raises(Retry) as retry:
        await _submit(session_factory, ctx)
    assert retry.value.delay == 100 * 12.0
    assert "rate limited" in retry.value.reason and "Retry in ~100 blocks" in retry.value.reason
    scored.change(block=scored.state().block + 100)
    await _submit(session_factory, ctx)
    calls = scored.state().extrinsics
    assert [c["call"] for c in calls] == ["set_mechanism_weights"] * 2
    # 0.8/7 and 0.4/7, squared and normalised 0.8 : 0.2, max-upscaled to u16
    assert calls[-1]["args"]["dests"] == [1, 2]
    assert calls[-1]["args"]["weights"] == [65535, 16384]


async def test_an_unregistered_validator_fails_the_slot_at_once(
    session_factory: async_sessionmaker, scored: StandInSubnet
) -> None:
    with pytest.raises(Invalid, match="not registered"):
        await _submit(session_factory, _context(session_factory, scored, scored.stranger))


async def test_commit_reveal_subnets_get_a_timelocked_commit(
    session_factory: async_sessionmaker, scored: StandInSubnet, caplog: pytest.LogCaptureFixture
) -> None:
    scored.change(commit_reveal=True)
    with caplog.at_level("INFO"):
        await _submit(session_factory, _context(session_factory, scored))
    [call] = scored.state().extrinsics
    assert call["call"] == "commit_timelocked_mechanism_weights" and "error" not in call
    assert "committed (commit-reveal)" in caplog.text


async def test_an_unbuildable_vector_is_invalid_not_a_traceback(
    session_factory: async_sessionmaker, scored: StandInSubnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the database keeps uids unique; a bug upstream of the chain client must still end as a
    # clear job failure, not a traceback retried three times
    monkeypatch.setattr(periodic, "weights_to_submit",
                        lambda *_, **__: ChosenWeights(WeightVector((1, 1), (0.5, 0.5)), None))
    with pytest.raises(Invalid, match="uid 1 appears twice"):
        await _submit(session_factory, _context(session_factory, scored))
    assert scored.state().extrinsics == []

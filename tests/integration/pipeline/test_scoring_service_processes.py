"""ScoringService's real entry point on real scoring processes, against a miner on loopback
that accepts the validator's read and never answers: the scoring task is then mid-read in
its process, where the test kills it (what the OOM killer does after a decompression bomb)
or lets its deadline pass."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gaia.config import DataSettings, Settings, WalletSettings
from gaia.jobs.outcomes import Invalid, Retry, TimedOut
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import ForecastRef
from gaia.tasks.defined_tasks.weather.pipeline.scoring_service import (
    ScoringEnvironment,
    ScoringService,
)
from tests.fixtures.miner import make_wallet
from tests.fixtures.scoring_tasks import is_running, scoring_children

INIT = datetime(2026, 11, 2, tzinfo=UTC)
LONG_S = 600.0
"""A timeout nothing in these tests waits for."""
ARRIVAL_S = 120.0
"""Bound on a spawned process importing the scoring code and making its first request."""


class SilentMiner:
    """Accepts every connection and never answers, until :attr:`stalling` is cleared; then
    it closes each new connection at once."""

    def __init__(self) -> None:
        self.stalling = True
        self.connections: asyncio.Queue[None] = asyncio.Queue()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.stalling:
            self.connections.put_nowait(None)
            await reader.read()  # until the reader's process goes away
        writer.close()

    async def next_connection(self) -> None:
        await asyncio.wait_for(self.connections.get(), ARRIVAL_S)


@contextlib.asynccontextmanager
async def silent_miner() -> AsyncIterator[tuple[SilentMiner, str]]:
    miner = SilentMiner()
    server = await asyncio.start_server(miner.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield miner, f"http://127.0.0.1:{port}"
    finally:
        server.close()


def forecast_at(base_url: str) -> ForecastRef:
    return ForecastRef(INIT, base_url, "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty",
                       "job-1", "0" * 64)


def refused_url() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def service_of(tmp_path: Path) -> Iterator:
    wallet = make_wallet(tmp_path / "wallets", "validator")
    env = ScoringEnvironment.from_settings(Settings(
        wallet=WalletSettings(name="validator", path=tmp_path / "wallets"),
        data=DataSettings(cache_dir=tmp_path / "cache", reference_cache_dir=tmp_path / "references",
                          http_timeout_s=LONG_S),
    ))
    services: list[ScoringService] = []

    def make(processes: int) -> ScoringService:
        services.append(ScoringService(env, SignedClient(wallet, timeout=LONG_S),
                                       processes=processes))
        return services[-1]

    yield make
    for service in services:
        service.close()


def the_scoring_process() -> int:
    (pid,) = scoring_children(os.getpid())
    return pid


async def test_a_forecast_that_kills_its_process_twice_is_invalid_and_the_pool_lives_on(
    service_of,
):
    service = service_of(1)
    async with silent_miner() as (miner, url):
        scoring = asyncio.create_task(service.score_day1(forecast_at(url), timeout_s=LONG_S))
        for _ in range(2):  # the second read comes from a fresh process
            await miner.next_connection()
            os.kill(the_scoring_process(), signal.SIGKILL)
        with pytest.raises(Invalid, match="killed its scoring process twice"):
            await scoring

    # the next miner's task runs on a healthy process and gets its own outcome
    with pytest.raises(Retry) as raised:
        await service.score_day1(forecast_at(refused_url()), timeout_s=LONG_S)
    assert not isinstance(raised.value, TimedOut)


async def test_one_death_is_scored_again_on_a_fresh_process(service_of):
    service = service_of(1)
    async with silent_miner() as (miner, url):
        scoring = asyncio.create_task(service.score_day1(forecast_at(url), timeout_s=LONG_S))
        await miner.next_connection()
        killed = the_scoring_process()
        miner.stalling = False
        os.kill(killed, signal.SIGKILL)
        # the retry's reads reach the miner again and fail like any unanswered read
        with pytest.raises(Retry) as raised:
            await scoring
    assert not isinstance(raised.value, TimedOut)
    assert the_scoring_process() != killed


async def test_a_task_past_its_deadline_dies_with_its_process_and_the_next_runs(service_of):
    service = service_of(1)
    async with silent_miner() as (miner, url):
        scoring = asyncio.create_task(service.score_day1(forecast_at(url), timeout_s=LONG_S / 100))
        await miner.next_connection()
        stuck = the_scoring_process()
        with pytest.raises(TimedOut):
            await scoring
        assert not is_running(stuck)

        era5 = service.score_era5_leads(forecast_at(refused_url()), [24], timeout_s=LONG_S)
        with pytest.raises(Retry) as raised:
            await era5
    assert not isinstance(raised.value, TimedOut)


async def test_in_process_scoring_keeps_the_deadline(service_of):
    service = service_of(0)
    async with silent_miner() as (miner, url):
        with pytest.raises(TimedOut):
            await service.score_day1(forecast_at(url), timeout_s=1.0)
    assert scoring_children(os.getpid()) == []

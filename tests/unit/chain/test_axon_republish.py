"""The miner's axon check: a refused publish is tried again at the next check, on its clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import bittensor as bt
import pytest

from gaia.clock import VirtualClock
from gaia.miner.runtime import every, publish_axon
from tests.fixtures.chain_standin import standin_init
from tests.fixtures.standin_subnet import seed_subnet

INTERVAL_S = 600.0


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("gave up waiting")


async def test_a_refused_axon_is_published_at_a_later_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("BTCLI_TOKEN_SYMBOLS_CACHE", str(tmp_path / "symbols.json"))
    subnet = seed_subnet(tmp_path)
    monkeypatch.setattr(bt.Subtensor, "__init__", standin_init(subnet.state_path))
    hotkey = subnet.miner.hotkey.ss58_address
    subnet.change(served_at={hotkey: subnet.state().block})  # served a moment ago
    chain, clock = subnet.client(subnet.miner), VirtualClock(datetime(2026, 12, 1, tzinfo=UTC))

    assert await publish_axon(chain, "198.51.100.4", 8091, INTERVAL_S) is False
    assert "ServingRateLimitExceeded" in caplog.text and "trying again in 600s" in caplog.text
    check = partial(publish_axon, chain, "198.51.100.4", 8091, INTERVAL_S)
    task = asyncio.create_task(every(clock, INTERVAL_S, check, "axon check"))
    try:
        subnet.change(block=subnet.state().block + 50)  # ten minutes of blocks later
        await _until(lambda: clock.next_wakeup() is not None)
        clock.advance(timedelta(seconds=INTERVAL_S))
        await _until(lambda: subnet.state().neurons[1].axon == ("198.51.100.4", 8091))
        assert [c.get("error") for c in subnet.state().extrinsics] == [
            "ServingRateLimitExceeded", None]
    finally:
        task.cancel()

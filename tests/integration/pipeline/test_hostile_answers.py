"""A hostile miner's API answers (initiate-fetch, job status) are read only up to the cap:
the validator stops the transfer at 64 KiB instead of buffering 512 MiB, and the call is
``Invalid``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from gaia.jobs.outcomes import Invalid
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.pipeline.miner_client import (
    MAX_ANSWER_BYTES,
    MinerClient,
    MinerProtocolError,
    as_outcomes,
)
from gaia.tasks.defined_tasks.weather.protocol import INITIATE_FETCH_PATH, job_status_path
from tests.fixtures.forecast_store import new_keypair
from tests.fixtures.hostile_miner import HostileMiner, running_hostile_miner

ANSWER_BYTES = 512 * 1024 * 1024
# What may be in flight when the client hangs up: socket buffers on both sides and the
# piece being written. Reading everything would be ANSWER_BYTES.
MOST_SENT_BYTES = 16 * 1024 * 1024
MINER = new_keypair()


@pytest.fixture
def miner() -> Iterator[HostileMiner]:
    with running_hostile_miner(MINER, {}) as state:
        state.api_answer_bytes = ANSWER_BYTES
        yield state


@pytest.fixture
async def client() -> AsyncIterator[SignedClient]:
    async with SignedClient(new_keypair(), timeout=30.0) as signed:
        yield signed


async def _stopped_early(miner: HostileMiner, path: str) -> None:
    for _ in range(100):  # the server notices the closed connection at its next write
        if path in miner.stopped_at:
            break
        await asyncio.sleep(0.05)
    assert path in miner.stopped_at
    assert miner.sent_bytes[path] < MOST_SENT_BYTES


async def test_a_huge_job_status_answer_is_invalid_and_not_read(
    client: SignedClient, miner: HostileMiner
) -> None:
    with pytest.raises(Invalid, match=f"answer larger than {MAX_ANSWER_BYTES} bytes"), as_outcomes():
        await MinerClient(client).job_status(miner.base_url, MINER.ss58_address, "job-1",
                                             timeout_s=30.0)
    await _stopped_early(miner, job_status_path("job-1"))


async def test_a_huge_initiate_fetch_answer_is_invalid_and_not_read(
    client: SignedClient, miner: HostileMiner
) -> None:
    with pytest.raises(MinerProtocolError, match="answer larger than"):
        await MinerClient(client).initiate_fetch(
            miner.base_url, MINER.ss58_address, datetime(2026, 11, 20, 12, tzinfo=UTC),
            timeout_s=30.0,
        )
    await _stopped_early(miner, INITIATE_FETCH_PATH)

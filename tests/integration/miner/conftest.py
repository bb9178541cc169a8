"""Shared pieces of the miner's integration tests: the project's archive on loopback, real
wallets, a static chain file, and one long-lived miner process per test module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from gaia.net.signed_http import SignedClient
from tests.fixtures.miner import MinerArchive, MinerIdentities, MinerProcess, new_miner


@pytest.fixture(scope="module")
def miner(
    miner_identities: MinerIdentities,
    miner_archive: MinerArchive,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MinerProcess]:
    """One persistence miner shared by a test module."""
    process = new_miner(miner_identities, miner_archive, tmp_path_factory.mktemp("miner")).start()
    yield process
    process.stop()


@pytest.fixture
async def validator_client(miner_identities: MinerIdentities) -> AsyncIterator[SignedClient]:
    async with SignedClient(miner_identities.validator, timeout=10.0) as client:
        yield client

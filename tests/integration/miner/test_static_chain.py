"""The static chain client: neurons from a JSON file, served axons and weights beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaia.chain.bittensor_chain import BittensorChainClient
from gaia.chain.client import AxonServed, ChainError, InvalidWeights, Neuron
from gaia.chain.factory import build_chain_client
from gaia.chain.static import StaticChainClient, write_neurons
from gaia.config import ChainSettings

NEURONS = [
    Neuron(0, "miner-hk", "cold-a", None, None, 0.0, False),
    Neuron(1, "validator-hk", "cold-b", "10.0.0.2", 8091, 25_000.5, True),
]


async def test_metagraph_round_trips_the_file(tmp_path: Path) -> None:
    path = tmp_path / "neurons.json"
    write_neurons(path, NEURONS)
    assert await StaticChainClient(path, hotkey="miner-hk").metagraph() == NEURONS


async def test_serve_is_seen_by_every_reader(tmp_path: Path) -> None:
    path = tmp_path / "neurons.json"
    write_neurons(path, NEURONS)
    miner = StaticChainClient(path, hotkey="miner-hk")
    assert await miner.serve("127.0.0.1", 9001) is AxonServed.PUBLISHED
    assert await miner.serve("127.0.0.1", 9001) is AxonServed.UNCHANGED
    reader = StaticChainClient(path, hotkey="validator-hk")
    miner = (await reader.metagraph())[0]
    assert (miner.ip, miner.port) == ("127.0.0.1", 9001)
    assert (await reader.metagraph())[1] == NEURONS[1]


async def test_weights_are_written_per_hotkey(tmp_path: Path) -> None:
    path = tmp_path / "neurons.json"
    write_neurons(path, NEURONS)
    client = StaticChainClient(path, hotkey="validator-hk")
    await client.set_weights([0, 1], [0.75, 0.25], version_key=3)
    assert client.read_weights("validator-hk") == {
        "uids": [0, 1],
        "weights": [0.75, 0.25],
        "version_key": 3,
    }
    assert client.read_weights("miner-hk") is None
    with pytest.raises(InvalidWeights, match="2 uids but 1 weights"):
        await client.set_weights([0, 1], [1.0], version_key=3)


async def test_bad_files_raise_chain_errors(tmp_path: Path) -> None:
    with pytest.raises(ChainError, match="cannot read static chain file"):
        await StaticChainClient(tmp_path / "missing.json", hotkey="x").metagraph()
    broken = tmp_path / "broken.json"
    broken.write_text('{"neurons": [{"uid": 0}]}')
    with pytest.raises(ChainError, match="bad neuron record"):
        await StaticChainClient(broken, hotkey="x").metagraph()


def test_factory_builds_the_configured_client(tmp_path: Path) -> None:
    with pytest.raises(ChainError, match="static_path"):
        build_chain_client(ChainSettings(kind="static"), hotkey="x", wallet=None)
    static = ChainSettings(kind="static", static_path=tmp_path / "n.json")
    assert isinstance(build_chain_client(static, hotkey="x", wallet=None), StaticChainClient)
    real = build_chain_client(ChainSettings(kind="bittensor"), hotkey="x", wallet=None)
    assert isinstance(real, BittensorChainClient)

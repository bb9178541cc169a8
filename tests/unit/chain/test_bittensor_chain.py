"""The bittensor chain client: metagraph rows to neurons, and failures as ChainError."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import bittensor as bt
import pytest

from gaia.chain.bittensor_chain import BittensorChainClient, neuron_from_metagraph, parse_axon
from gaia.chain.client import ChainError, Neuron


def test_axon_endpoints() -> None:
    assert parse_axon("10.0.0.7:8091") == ("10.0.0.7", 8091)
    assert parse_axon("[2001:db8::1]:443") == ("2001:db8::1", 443)
    assert parse_axon(None) == (None, None)
    with pytest.raises(ChainError, match="unreadable"):
        parse_axon("nonsense")


def test_metagraph_row_becomes_a_neuron() -> None:
    row = SimpleNamespace(
        uid=3, hotkey="5Hot", coldkey="5Cold", axon="1.2.3.4:8091", validator_permit=True,
        total_stake=bt.Balance.from_tao(1234.5),
    )
    assert neuron_from_metagraph(row) == Neuron(3, "5Hot", "5Cold", "1.2.3.4", 8091, 1234.5, True)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_chain_is_a_chain_error_naming_the_operation() -> None:
    client = BittensorChainClient(f"ws://127.0.0.1:{_closed_port()}", 57, wallet=None)
    with pytest.raises(ChainError, match="metagraph of netuid 57"):
        await client.metagraph()

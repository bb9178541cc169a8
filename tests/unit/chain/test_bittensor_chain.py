"""The bittensor chain client through the SDK's own decoder and intents, on the stand-in.

Every test runs the project's real ``BittensorChainClient`` → ``bt.Subtensor`` → the SDK's
metagraph decoder / ``SetWeights`` / ``ServeAxon`` → ``SubtensorStandIn`` (decoded storage of
a subnet like ours: netuid 57, alpha stakes). Only the transport is replaced.
"""

from __future__ import annotations

import math
import socket
from pathlib import Path
from typing import Any

import bittensor as bt
import bittensor_core
import pytest

from gaia.chain.bittensor_chain import BittensorChainClient, parse_axon
from gaia.chain.client import (
    AxonServed,
    ChainError,
    ChainRefused,
    InvalidWeights,
    Neuron,
    Refusal,
)
from tests.fixtures.chain_standin import SubtensorStandIn, standin_init
from tests.fixtures.standin_subnet import NETUID, OTHER_HOTKEY, seed_subnet
from tests.fixtures.standin_subnet import StandInSubnet as Subnet


@pytest.fixture
def subnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Subnet:
    monkeypatch.setenv("BTCLI_TOKEN_SYMBOLS_CACHE", str(tmp_path / "symbols.json"))
    seeded = seed_subnet(tmp_path)
    monkeypatch.setattr(bt.Subtensor, "__init__", standin_init(seeded.state_path))
    return seeded


def test_axon_endpoints() -> None:
    assert parse_axon("10.0.0.7:8091") == ("10.0.0.7", 8091)
    assert parse_axon("[2001:db8::1]:443") == ("2001:db8::1", 443)
    assert parse_axon(None) == (None, None)
    with pytest.raises(ChainError, match="unreadable"):
        parse_axon("nonsense")


async def test_metagraph_of_a_subnet_with_alpha_stakes(subnet: Subnet) -> None:
    neurons = await subnet.client(subnet.miner).metagraph()
    v, m = subnet.validator, subnet.miner
    assert neurons == [
        # total stake: 1500 alpha + 2000 TAO at the chain's TAO weight 0.18 = 1860 alpha
        Neuron(0, v.hotkey.ss58_address, v.coldkeypub.ss58_address, None, None, 1860.0, True),
        Neuron(1, m.hotkey.ss58_address, m.coldkeypub.ss58_address, "45.33.20.7", 8091, 12.5,
               False),
        Neuron(2, OTHER_HOTKEY, "5Cold", "2600:3c00::5",
               443, 0.0, False),
    ]


async def test_a_missing_subnet_is_a_chain_error(subnet: Subnet) -> None:
    with pytest.raises(ChainError, match="netuid 12 does not exist"):
        await subnet.client(subnet.miner, netuid=12).metagraph()


async def test_weights_are_quantised_by_the_sdk_and_set(subnet: Subnet) -> None:
    confirmation = await subnet.client(subnet.validator).set_weights([0, 1, 2], [0.2, 0.6, 0.0], 7)
    assert confirmation == "Success"
    [call] = subnet.state().extrinsics
    assert call["call"] == "set_mechanism_weights" and "error" not in call
    # max-upscaled to u16, zeros dropped
    assert call["args"] == {"netuid": NETUID, "mecid": 0, "dests": [0, 1],
                            "weights": [21845, 65535], "version_key": 7}
    assert call["signer"] == subnet.validator.hotkey.ss58_address


async def test_weights_with_commit_reveal_are_a_timelocked_commit(
    subnet: Subnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    subnet.change(commit_reveal=True)
    sealed: list[dict[str, Any]] = []
    encrypt = bittensor_core.get_encrypted_commit_v2

    def spy(**arguments: Any) -> Any:  # the real encryption, its plaintext recorded
        sealed.append(arguments)
        return encrypt(**arguments)

    monkeypatch.setattr(bittensor_core, "get_encrypted_commit_v2", spy)
    confirmation = await subnet.client(subnet.validator).set_weights([0, 1], [0.25, 0.75], 7)
    [call] = subnet.state().extrinsics
    assert call["call"] == "commit_timelocked_mechanism_weights" and "error" not in call
    assert (sealed[0]["uids"], sealed[0]["weights"]) == ([0, 1], [21845, 65535])
    assert call["args"]["reveal_round"] > 0 and len(call["args"]["commit"]) > 100
    assert confirmation.startswith("committed (commit-reveal)")
    assert str(call["args"]["reveal_round"]) in confirmation


async def test_a_rate_limited_weights_call_says_when_to_retry(subnet: Subnet) -> None:
    validator = subnet.client(subnet.validator)
    await validator.set_weights([1], [1.0], 0)
    with pytest.raises(ChainRefused) as refused:
        await validator.set_weights([1], [1.0], 0)
    assert refused.value.refusal is Refusal.RATE_LIMITED
    assert "Retry in ~100 blocks" in refused.value.words
    assert refused.value.retry_in_s == 100 * 12.0
    assert len(subnet.state().extrinsics) == 1  # refused before signing: nothing submitted
    subnet.change(block=subnet.state().block + 100)
    await validator.set_weights([1], [1.0], 0)
    assert len(subnet.state().extrinsics) == 2


async def test_an_unregistered_hotkey_is_refused_with_the_chains_words(subnet: Subnet) -> None:
    with pytest.raises(ChainRefused) as refused:
        await subnet.client(subnet.stranger).set_weights([1], [1.0], 0)
    assert refused.value.refusal is Refusal.NOT_REGISTERED
    assert "is not registered on netuid 57" in str(refused.value)


async def test_commit_reveal_switched_on_under_the_submission_is_its_own_refusal(
    subnet: Subnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the SDK read commit-reveal off; by inclusion the chain has it on
    original = SubtensorStandIn.submit

    async def flipped(self: Any, call: Any, keypair: Any, **options: Any) -> Any:
        subnet.change(commit_reveal=True)
        return await original(self, call, keypair, **options)

    monkeypatch.setattr(SubtensorStandIn, "submit", flipped)
    with pytest.raises(ChainRefused) as refused:
        await subnet.client(subnet.validator).set_weights([1], [1.0], 0)
    assert refused.value.refusal is Refusal.COMMIT_REVEAL
    assert "CommitRevealEnabled" in refused.value.words


@pytest.mark.parametrize(("uids", "weights", "reason"), [
    ([0, 1], [0.5], "2 uids but 1 weights"),
    ([1, 1], [0.5, 0.5], "uid 1 appears twice"),
    ([0, 70000], [0.5, 0.5], "outside 0..65535"),
    ([0, 1], [0.5, math.nan], "finite"),
    ([0, 1], [0.5, -1.0], "finite and >= 0"),
    ([0, 1], [0.0, 0.0], "zero"),
])
async def test_a_vector_that_cannot_be_built_is_a_clear_error_before_the_chain(
    subnet: Subnet, uids: list[int], weights: list[float], reason: str
) -> None:
    with pytest.raises(InvalidWeights, match=reason):
        await subnet.client(subnet.validator).set_weights(uids, weights, 0)
    assert subnet.state().extrinsics == []


async def test_serving_an_unchanged_axon_sends_nothing(subnet: Subnet) -> None:
    assert await subnet.client(subnet.miner).serve("45.33.20.7", 8091) is AxonServed.UNCHANGED
    assert subnet.state().extrinsics == []


async def test_serving_a_changed_axon_publishes_it_once(subnet: Subnet) -> None:
    miner = subnet.client(subnet.miner)
    assert await miner.serve("203.0.113.8", 8091) is AxonServed.PUBLISHED
    assert await miner.serve("203.0.113.8", 8091) is AxonServed.UNCHANGED
    [call] = subnet.state().extrinsics
    assert call["call"] == "serve_axon"
    assert (call["args"]["ip"], call["args"]["port"], call["args"]["ip_type"]) == (
        int.from_bytes(socket.inet_aton("203.0.113.8"), "big"), 8091, 4)
    graph = await miner.metagraph()
    assert (graph[1].ip, graph[1].port) == ("203.0.113.8", 8091)


async def test_a_serve_within_the_rate_limit_is_refused_with_the_chains_reason(
    subnet: Subnet
) -> None:
    miner = subnet.client(subnet.miner)
    await miner.serve("203.0.113.8", 8091)
    with pytest.raises(ChainRefused) as refused:
        await miner.serve("203.0.113.9", 8091)
    assert refused.value.refusal is Refusal.RATE_LIMITED
    assert "ServingRateLimitExceeded" in refused.value.words
    subnet.change(block=subnet.state().block + 50)
    assert await miner.serve("203.0.113.9", 8091) is AxonServed.PUBLISHED


async def test_an_unregistered_hotkey_cannot_serve(subnet: Subnet) -> None:
    with pytest.raises(ChainRefused) as refused:
        await subnet.client(subnet.stranger).serve("203.0.113.10", 8091)
    assert refused.value.refusal is Refusal.NOT_REGISTERED
    assert "not registered" in refused.value.words


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_chain_is_a_chain_error_naming_the_operation() -> None:
    client = BittensorChainClient(f"ws://127.0.0.1:{_closed_port()}", 57, wallet=None)
    with pytest.raises(ChainError, match="metagraph of netuid 57"):
        await client.metagraph()


async def test_fewer_weights_than_the_subnet_allows_is_invalid_for_it(subnet: Subnet) -> None:
    subnet.change(min_allowed_weights=3)
    with pytest.raises(ChainRefused) as refused:
        await subnet.client(subnet.validator).set_weights([1, 2], [0.5, 0.5], 0)
    assert refused.value.refusal is Refusal.INVALID
    assert "requires at least 3 weights" in refused.value.words

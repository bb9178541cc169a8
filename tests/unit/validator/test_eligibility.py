"""Whom a validator queries: an axon, not itself, and a public address unless allowed."""

from __future__ import annotations

import pytest

from gaia.chain.client import Neuron
from gaia.validator.eligibility import Eligibility

PUBLIC = Eligibility("5Me", allow_private_axons=False)
LOCAL_NET = Eligibility("5Me", allow_private_axons=True)


def miner(ip: str | None, port: int | None = 8091, hotkey: str = "5Miner") -> Neuron:
    return Neuron(1, hotkey, "5Cold", ip, port, 0.0, False)


@pytest.mark.parametrize(("ip", "kind"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"), ("10.1.2.3", "private"), ("192.168.0.7", "private"),
    ("172.16.5.5", "private"), ("fd00::7", "private"), ("::ffff:10.0.0.1", "private"),
    ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"), ("100.64.0.9", "non-public"),
])
def test_non_public_axons_are_refused_on_the_public_chain(ip: str, kind: str) -> None:
    reason = PUBLIC.why_not_queried(miner(ip))
    assert reason is not None and reason.startswith(kind) and "allow_private_axons" in reason
    assert LOCAL_NET.would_query(miner(ip))


@pytest.mark.parametrize("ip", ["45.33.20.7", "2600:3c00::5"])
def test_public_axons_are_queried(ip: str) -> None:
    assert PUBLIC.would_query(miner(ip))


def test_no_axon_and_self_are_never_queried() -> None:
    assert LOCAL_NET.why_not_queried(miner(None, None)) == "no axon served"
    assert LOCAL_NET.why_not_queried(miner("45.33.20.7", 0)) == "no axon served"
    assert LOCAL_NET.why_not_queried(miner("45.33.20.7", hotkey="5Me")) == "this validator"

"""The :class:`~gaia.chain.client.ChainClient` on a real subtensor, through bittensor 11.

Each call opens a connection on the caller's event loop (``async with bt.Subtensor(network)``),
so the client holds no socket between the validator's infrequent chain calls and survives
endpoint restarts. What can go wrong comes back typed:

- the chain cannot be reached, or answers something unreadable → :class:`ChainError`;
- the chain refuses a call (rate limit, unregistered hotkey, commit-reveal) →
  :class:`ChainRefused` with the chain's own words and, for a rate limit, when to retry;
- a weights vector that cannot be built → :class:`InvalidWeights`, before any chain contact.

Stakes are read in the subnet's alpha (``total_stake``); on any subnet but root the SDK's
``.tao`` on them raises, by design, so this module never uses it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Sequence
from typing import Any

import bittensor as bt

from gaia.chain.client import (
    AxonServed,
    ChainError,
    ChainRefused,
    InvalidWeights,
    Neuron,
    Refusal,
    check_weights,
)

log = logging.getLogger(__name__)

AXONS = ("SubtensorModule", "Axons")  # the served (ip, port) of each hotkey, per subnet
_RETRY_IN_BLOCKS = re.compile(r"retry in ~(\d+) blocks? \(~(\d+)s\)", re.IGNORECASE)
_REFUSAL_BY_CODE = {
    "rate_limited": Refusal.RATE_LIMITED,
    "not_registered": Refusal.NOT_REGISTERED,
    "invalid_argument": Refusal.INVALID,
}
_COMMIT_REVEAL_ERRORS = frozenset(
    {"CommitRevealEnabled", "CommitRevealDisabled", "TooManyUnrevealedCommits",
     "IncorrectCommitRevealVersion"}
)


def parse_axon(endpoint: str | None) -> tuple[str | None, int | None]:
    """``"1.2.3.4:8091"`` or ``"[::1]:8091"`` → (ip, port); None → (None, None)."""
    if not endpoint:
        return None, None
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit():
        raise ChainError(f"unreadable axon endpoint {endpoint!r}")
    return host.strip("[]"), int(port)


def neuron_from_metagraph(row: Any) -> Neuron:
    """One ``MetagraphNeuron`` as a :class:`Neuron`; stake in the subnet's alpha."""
    ip, port = parse_axon(row.axon)
    return Neuron(
        uid=int(row.uid),
        hotkey=str(row.hotkey),
        coldkey=str(row.coldkey),
        ip=ip,
        port=port,
        stake=float(row.total_stake.amount),
        validator_permit=bool(row.validator_permit),
    )


def refusal_of(error: bt.ChainError, what: str) -> ChainRefused:
    """The SDK's chain error as a :class:`ChainRefused` naming ``what`` was refused."""
    refusal = _REFUSAL_BY_CODE.get(str(getattr(error.code, "value", "")), Refusal.OTHER)
    if error.name in _COMMIT_REVEAL_ERRORS:
        refusal = Refusal.COMMIT_REVEAL
    words = error.message or str(error)
    if error.name and error.name not in words:
        words = f"{error.name}: {words}"
    retry = _RETRY_IN_BLOCKS.search(words)
    return ChainRefused(
        what, refusal, words, retry_in_s=float(retry.group(2)) if retry else None
    )


def _axon_of(record: Any) -> tuple[str, int] | None:
    """The decoded ``Axons`` storage value (ip as an integer) as (ip, port); None when
    nothing is served."""
    if not isinstance(record, dict) or not int(record.get("ip") or 0):
        return None
    ip = int(record["ip"])
    address = ipaddress.IPv6Address(ip) if int(record.get("ip_type") or 4) == 6 else (
        ipaddress.IPv4Address(ip))
    return str(address), int(record.get("port") or 0)


class BittensorChainClient:
    """Metagraph reads and hotkey-signed intents (``SetWeights``, ``ServeAxon``)."""

    def __init__(self, network: str, netuid: int, wallet: Any) -> None:
        self._network = network
        self._netuid = netuid
        self._wallet = wallet

    def _subtensor(self) -> bt.Subtensor:
        return bt.Subtensor(self._network)

    async def metagraph(self) -> list[Neuron]:
        where = f"metagraph of netuid {self._netuid} on {self._network}"
        try:
            async with self._subtensor() as client:
                graph = await client.subnets.metagraph(self._netuid, commitments=False)
        except bt.BittensorError as error:
            raise ChainError(f"{where}: {error}") from error
        if graph is None:
            raise ChainError(f"netuid {self._netuid} does not exist on {self._network}")
        try:
            return [neuron_from_metagraph(row) for row in graph.neurons]
        except (TypeError, ValueError, AttributeError) as error:
            raise ChainError(f"{where}: unreadable neuron: {error}") from error

    async def set_weights(
        self, uids: Sequence[int], weights: Sequence[float], version_key: int
    ) -> str:
        check_weights(uids, weights)
        try:
            intent = bt.SetWeights(
                netuid=self._netuid, uids=list(uids), weights=list(weights),
                version_key=version_key,
            )
        except bt.BittensorError as error:
            raise InvalidWeights(str(error)) from error
        result = await self._execute(intent, "set_weights")
        reveal_round = result.data.get("reveal_round")
        if reveal_round is not None:
            return f"committed (commit-reveal), revealed by the chain at drand round {reveal_round}"
        return result.message or "set"

    async def serve(self, ip: str, port: int) -> AxonServed:
        hotkey = self._wallet.hotkey.ss58_address
        try:
            async with self._subtensor() as client:
                record = await client.query(AXONS, [self._netuid, hotkey])
        except bt.BittensorError as error:
            raise ChainError(f"axon of {hotkey} on {self._network}: {error}") from error
        if _axon_of(record) == (str(ipaddress.ip_address(ip)), port):
            return AxonServed.UNCHANGED
        await self._execute(bt.ServeAxon(netuid=self._netuid, ip=ip, port=port), "serve_axon")
        return AxonServed.PUBLISHED

    async def _execute(self, intent: Any, what: str) -> bt.ExtrinsicResult:
        where = f"{what} on netuid {self._netuid} of {self._network}"
        try:
            async with self._subtensor() as client:
                result = await client.execute(intent, self._wallet)
        except bt.ChainError as error:  # refused before signing (the SDK's preflight)
            raise refusal_of(error, where) from error
        except bt.BittensorError as error:
            raise ChainError(f"{where}: {error}") from error
        if not result.success:
            if result.error is not None:
                raise refusal_of(result.error, where)
            raise ChainRefused(where, Refusal.OTHER, result.message or "no reason given")
        log.info("%s: %s", where, result.message or "ok")
        return result

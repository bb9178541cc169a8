"""The :class:`~gaia.chain.client.ChainClient` on a real subtensor, through bittensor 11.

Each call opens a connection on the caller's event loop (``async with bt.Subtensor(network)``),
so the client holds no socket between the validator's infrequent chain calls and survives
endpoint restarts. bittensor's errors become :class:`ChainError` with the operation named;
callers (the periodic jobs) log them and try again later, never crash.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import bittensor as bt

from gaia.chain.client import ChainError, Neuron

log = logging.getLogger(__name__)


def parse_axon(endpoint: str | None) -> tuple[str | None, int | None]:
    """``"1.2.3.4:8091"`` or ``"[::1]:8091"`` → (ip, port); None → (None, None)."""
    if not endpoint:
        return None, None
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit():
        raise ChainError(f"unreadable axon endpoint {endpoint!r}")
    return host.strip("[]"), int(port)


def neuron_from_metagraph(row: Any) -> Neuron:
    ip, port = parse_axon(row.axon)
    return Neuron(
        uid=int(row.uid),
        hotkey=str(row.hotkey),
        coldkey=str(row.coldkey),
        ip=ip,
        port=port,
        stake=float(row.total_stake.tao),
        validator_permit=bool(row.validator_permit),
    )


class BittensorChainClient:
    """Metagraph reads and hotkey-signed intents (``SetWeights``, ``ServeAxon``)."""

    def __init__(self, network: str, netuid: int, wallet: Any) -> None:
        self._network = network
        self._netuid = netuid
        self._wallet = wallet

    async def metagraph(self) -> list[Neuron]:
        try:
            async with bt.Subtensor(self._network) as client:
                graph = await client.subnets.metagraph(self._netuid)
        except bt.BittensorError as error:
            raise ChainError(
                f"metagraph of netuid {self._netuid} on {self._network}: {error}"
            ) from error
        if graph is None:
            raise ChainError(f"netuid {self._netuid} does not exist on {self._network}")
        return [neuron_from_metagraph(row) for row in graph.neurons]

    async def set_weights(
        self, uids: Sequence[int], weights: Sequence[float], version_key: int
    ) -> None:
        intent = bt.SetWeights(
            netuid=self._netuid, uids=list(uids), weights=list(weights), version_key=version_key
        )
        await self._execute(intent, "set_weights")

    async def serve(self, ip: str, port: int) -> None:
        await self._execute(bt.ServeAxon(netuid=self._netuid, ip=ip, port=port), "serve_axon")

    async def _execute(self, intent: Any, what: str) -> None:
        try:
            async with bt.Subtensor(self._network) as client:
                result = await client.execute(intent, self._wallet)
        except bt.BittensorError as error:
            raise ChainError(f"{what} on {self._network}: {error}") from error
        if not result.success:
            raise ChainError(f"{what} on {self._network} was refused: {result.message}")
        log.info("%s on %s: %s", what, self._network, result.message or "ok")

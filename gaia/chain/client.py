"""What the project needs from the chain, behind a small protocol.

Two implementations: :mod:`gaia.chain.static` (a JSON file, for local nets and tests) and a
bittensor one. Everything else takes a :class:`ChainClient` and never imports bittensor's
chain API directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class ChainError(Exception):
    """The chain (or its stand-in) could not answer; the message names what failed."""


@dataclass(frozen=True)
class Neuron:
    """One registered hotkey of the subnet as the metagraph shows it."""

    uid: int
    hotkey: str
    coldkey: str
    ip: str | None
    port: int | None
    stake: float
    validator_permit: bool


class ChainClient(Protocol):
    async def metagraph(self) -> list[Neuron]:
        """The subnet's neurons now."""
        ...

    async def set_weights(
        self, uids: Sequence[int], weights: Sequence[float], version_key: int
    ) -> None:
        """Submit this hotkey's weights for the subnet."""
        ...

    async def serve(self, ip: str, port: int) -> None:
        """Publish this hotkey's axon address (ip:port)."""
        ...

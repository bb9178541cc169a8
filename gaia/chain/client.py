"""What the project needs from the chain, behind a small protocol.

Two implementations: :mod:`gaia.chain.static` (a JSON file, for local nets and tests) and a
bittensor one. Everything else takes a :class:`ChainClient` and never imports bittensor's
chain API directly.

Stake unit: :attr:`Neuron.stake` is the neuron's stake weight on the subnet, in the
subnet's own alpha, as the metagraph reports it (``total_stake``: the hotkey's alpha plus
its root TAO times the chain's TAO weight, converted to alpha). It is the quantity the
chain itself ranks validator permits by, so a threshold on it (the miner's
``min_validator_stake``) means the same thing the chain means by "a big validator".
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

STAKE_UNIT = "alpha"
"""The unit of :attr:`Neuron.stake` (the subnet's alpha token)."""


class ChainError(Exception):
    """The chain (or its stand-in) could not answer; the message names what failed."""


class Refusal(enum.Enum):
    """Why the chain refused a call, as far as the caller must act on it."""

    RATE_LIMITED = "rate limited"  # too soon after the previous call: wait and retry
    NOT_REGISTERED = "not registered"  # the hotkey holds no uid on the subnet
    COMMIT_REVEAL = "commit-reveal"  # the subnet's commit-reveal setting refused the path
    INVALID = "invalid for this subnet"  # e.g. fewer weights than the subnet's minimum
    OTHER = "refused"


class ChainRefused(ChainError):
    """The chain answered and said no; ``words`` are the chain's own.

    ``retry_in_s`` is set when the chain says when to try again (a rate limit).
    """

    def __init__(
        self, what: str, refusal: Refusal, words: str, *, retry_in_s: float | None = None
    ) -> None:
        super().__init__(f"{what} was refused ({refusal.value}): {words}")
        self.refusal = refusal
        self.words = words
        self.retry_in_s = retry_in_s


class InvalidWeights(ValueError):
    """A weights vector no chain would accept (lengths differ, a uid twice, a bad value)."""


class AxonServed(enum.Enum):
    """What :meth:`ChainClient.serve` did."""

    PUBLISHED = "published"  # the chain had another address (or none); it has this one now
    UNCHANGED = "unchanged"  # the chain already had exactly this address: nothing was sent


@dataclass(frozen=True)
class Neuron:
    """One registered hotkey of the subnet as the metagraph shows it."""

    uid: int
    hotkey: str
    coldkey: str
    ip: str | None
    port: int | None
    stake: float  # stake weight in the subnet's alpha (see the module docstring)
    validator_permit: bool


def check_weights(uids: Sequence[int], weights: Sequence[float]) -> None:
    """Raise :class:`InvalidWeights` unless ``uids``/``weights`` make one valid vector."""
    if len(uids) != len(weights):
        raise InvalidWeights(f"{len(uids)} uids but {len(weights)} weights")
    seen: set[int] = set()
    for uid in uids:
        if not 0 <= int(uid) <= 0xFFFF:
            raise InvalidWeights(f"uid {uid} is outside 0..65535")
        if uid in seen:
            raise InvalidWeights(f"uid {uid} appears twice")
        seen.add(uid)
    bad = [w for w in weights if not (math.isfinite(w) and w >= 0)]
    if bad:
        raise InvalidWeights(f"weights must be finite and >= 0, got {bad[0]!r}")
    if not any(weights):
        raise InvalidWeights("every weight is zero: nothing to set")


class ChainClient(Protocol):
    async def metagraph(self) -> list[Neuron]:
        """The subnet's neurons now."""
        ...

    async def set_weights(
        self, uids: Sequence[int], weights: Sequence[float], version_key: int
    ) -> str:
        """Submit this hotkey's weights for the subnet; returns the chain's confirmation.

        Raises :class:`InvalidWeights` before contacting the chain for a vector that cannot
        be built, :class:`ChainRefused` when the chain says no, :class:`ChainError` when it
        cannot be reached.
        """
        ...

    async def serve(self, ip: str, port: int) -> AxonServed:
        """Publish this hotkey's axon address (ip:port) unless the chain already has it.

        Raises :class:`ChainRefused` (rate limit, not registered) or :class:`ChainError`.
        """
        ...

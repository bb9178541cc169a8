"""Which callers the miner serves: validators in the metagraph, or an explicit allowlist."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from gaia.chain.client import STAKE_UNIT, ChainClient, Neuron

log = logging.getLogger(__name__)


class ValidatorRegistry:
    """The accepted validators, from the last metagraph read plus the allowlist.

    A caller is accepted when it is allowlisted, or when the metagraph shows it with a
    validator permit and at least ``min_stake`` of stake, in the subnet's alpha (the
    metagraph's ``total_stake``, see :mod:`gaia.chain.client`).
    """

    def __init__(self, chain: ChainClient, *, min_stake: float, allowlist: Iterable[str]) -> None:
        self._chain = chain
        self._min_stake = min_stake
        self._allowlist = frozenset(allowlist)
        self._neurons: dict[str, Neuron] = {}

    async def refresh(self) -> None:
        """Read the metagraph now (raises :class:`~gaia.chain.client.ChainError`)."""
        neurons = await self._chain.metagraph()
        self._neurons = {n.hotkey: n for n in neurons}
        accepted = sum(1 for n in neurons if self._qualifies(n))
        log.info("metagraph: %d neurons, %d accepted validators", len(neurons), accepted)

    def refusal(self, hotkey: str) -> str | None:
        """Why ``hotkey`` is not served, or None when it is."""
        if hotkey in self._allowlist:
            return None
        neuron = self._neurons.get(hotkey)
        if neuron is None:
            return f"hotkey {hotkey} is not registered on the subnet"
        if not neuron.validator_permit:
            return f"hotkey {hotkey} has no validator permit"
        if neuron.stake < self._min_stake:
            return (
                f"hotkey {hotkey} stake {neuron.stake:g} {STAKE_UNIT} is below the minimum "
                f"{self._min_stake:g} {STAKE_UNIT}"
            )
        return None

    def _qualifies(self, neuron: Neuron) -> bool:
        return self.refusal(neuron.hotkey) is None

"""Which neurons a validator asks for forecasts: one rule for the fan-out and the admin view."""

from __future__ import annotations

from typing import Protocol


class Addressable(Protocol):
    """A neuron as the metagraph or the miners table shows it."""

    @property
    def hotkey(self) -> str: ...
    @property
    def ip(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...


def why_not_queried(neuron: Addressable, own_hotkey: str) -> str | None:
    """Why this validator would not query ``neuron``; None when it would."""
    if neuron.hotkey == own_hotkey:
        return "this validator"
    if neuron.ip is None or not neuron.port:
        return "no axon served"
    return None


def would_query(neuron: Addressable, own_hotkey: str) -> bool:
    return why_not_queried(neuron, own_hotkey) is None

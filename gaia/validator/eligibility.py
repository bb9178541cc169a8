"""Which neurons a validator asks for forecasts: one rule for the fan-out and the admin view.

A neuron is queried when it serves an axon, is not this validator, and its address is one a
validator on the public chain should connect to: loopback, link-local, private and other
non-global addresses are refused (a miner could otherwise point validators at their own
hosts' services) unless ``validator.allow_private_axons`` is on, as it is for a static chain.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol


class Addressable(Protocol):
    """A neuron as the metagraph or the miners table shows it."""

    @property
    def hotkey(self) -> str: ...
    @property
    def ip(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...


def _non_global(ip: str) -> str | None:
    """Why ``ip`` is no public address (None when it is one)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return f"unreadable address {ip!r}"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return f"{kind.replace('_', '-')} address {ip}"
    return None if address.is_global else f"non-public address {ip}"


@dataclass(frozen=True)
class Eligibility:
    own_hotkey: str
    allow_private_axons: bool

    def why_not_queried(self, neuron: Addressable) -> str | None:
        """Why this validator would not query ``neuron``; None when it would."""
        if neuron.hotkey == self.own_hotkey:
            return "this validator"
        if neuron.ip is None or not neuron.port:
            return "no axon served"
        if not self.allow_private_axons and (reason := _non_global(neuron.ip)):
            return f"{reason} (validator.allow_private_axons is off)"
        return None

    def would_query(self, neuron: Addressable) -> bool:
        return self.why_not_queried(neuron) is None

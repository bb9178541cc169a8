"""Build the configured :class:`~gaia.chain.client.ChainClient`."""

from __future__ import annotations

from typing import Any

from gaia.chain.bittensor_chain import BittensorChainClient
from gaia.chain.client import ChainClient, ChainError
from gaia.chain.static import StaticChainClient
from gaia.config import ChainSettings


def build_chain_client(settings: ChainSettings, *, hotkey: str, wallet: Any) -> ChainClient:
    """The chain client for ``settings.kind``, acting as ``hotkey`` of ``wallet``."""
    if settings.kind == "static":
        if settings.static_path is None:
            raise ChainError("chain.kind=static needs chain.static_path (--chain.static-path)")
        return StaticChainClient(settings.static_path.expanduser(), hotkey=hotkey)
    return BittensorChainClient(settings.network, settings.netuid, wallet)

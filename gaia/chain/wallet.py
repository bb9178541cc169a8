"""The one place a bittensor wallet is opened from the operator's wallet settings.

The validator, its scoring processes and the miner all sign with the hotkey of
``settings.wallet``; opening it here reads the keyfile at once, so a wallet that is not
there fails at start with :class:`WalletUnreadable` (each caller says which flag to fix)
rather than at the first signature.
"""

from __future__ import annotations

import bittensor as bt
from bittensor_core import KeyfileError

from gaia.config import WalletSettings


class WalletUnreadable(RuntimeError):
    """The hotkey of the configured wallet cannot be read; ``reason`` is the keyfile's error."""

    def __init__(self, settings: WalletSettings, reason: Exception):
        super().__init__(
            f"cannot read hotkey {settings.hotkey!r} of wallet {settings.name!r} "
            f"under {settings.path}: {reason}"
        )
        self.reason = reason


def open_wallet(settings: WalletSettings) -> bt.Wallet:
    """The wallet ``settings`` names, its hotkey already read."""
    wallet = bt.Wallet(name=settings.name, hotkey=settings.hotkey,
                       path=str(settings.path.expanduser()))
    try:
        wallet.hotkey.ss58_address  # noqa: B018 - reads the keyfile now
    except (OSError, KeyfileError) as error:
        raise WalletUnreadable(settings, error) from error
    return wallet

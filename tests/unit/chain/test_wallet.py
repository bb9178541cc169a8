"""The one wallet constructor: a wallet that is there comes back with its hotkey read; one
that is not fails at once, naming what the operator configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaia.chain.wallet import WalletUnreadable, open_wallet
from gaia.config import WalletSettings
from tests.fixtures.miner import make_wallet


def test_a_wallet_on_disk_opens_with_its_hotkey(tmp_path: Path) -> None:
    made = make_wallet(tmp_path, "validator")
    opened = open_wallet(WalletSettings(name="validator", path=tmp_path))
    assert opened.hotkey.ss58_address == made.hotkey.ss58_address


def test_a_missing_hotkey_fails_at_once_naming_the_wallet(tmp_path: Path) -> None:
    settings = WalletSettings(name="nobody", hotkey="hk", path=tmp_path)
    with pytest.raises(WalletUnreadable, match=f"hotkey 'hk' of wallet 'nobody' under {tmp_path}: ") as caught:
        open_wallet(settings)
    assert isinstance(caught.value.reason, Exception) and str(caught.value.reason)

from pathlib import Path

import pytest

from gaia.config import Settings
from gaia.miner.__main__ import FLAGS, build_parser, settings_from_args


def test_flags_map_into_settings() -> None:
    settings = settings_from_args(
        [
            "--wallet.name",
            "m1",
            "--wallet.hotkey",
            "hk",
            "--wallet.path",
            "/w",
            "--subtensor.network",
            "test",
            "--netuid",
            "3",
            "--chain",
            "static",
            "--chain.static-path",
            "/c/neurons.json",
            "--port",
            "9001",
            "--host",
            "127.0.0.1",
            "--model",
            "persistence",
            "--data-dir",
            "/d",
            "--validator-allowlist",
            "a",
            "--validator-allowlist",
            "b",
            "--serve-axon",
            "--gfs.fallback-url",
            "",
            "--rate-limit-per-minute",
            "7",
        ],
        base=Settings(),
    )
    assert (settings.wallet.name, settings.wallet.hotkey, settings.wallet.path) == (
        "m1",
        "hk",
        Path("/w"),
    )
    assert (settings.chain.network, settings.chain.netuid, settings.chain.kind) == (
        "test",
        3,
        "static",
    )
    assert settings.chain.static_path == Path("/c/neurons.json")
    assert (settings.miner.port, settings.miner.host, settings.miner.model) == (
        9001,
        "127.0.0.1",
        "persistence",
    )
    assert settings.miner.data_dir == Path("/d")
    assert settings.miner.validator_allowlist == ["a", "b"]
    assert settings.miner.serve_axon is True
    assert settings.miner.rate_limit_per_minute == 7
    assert settings.data.gfs_fallback_url == ""


def test_absent_flags_keep_settings() -> None:
    base = Settings()
    assert settings_from_args([], base=base) == base


def test_every_flag_targets_a_real_setting_and_is_documented() -> None:
    help_text = build_parser(Settings()).format_help()
    for flag in FLAGS:
        assert flag.name in help_text
        node: object = Settings()
        for part in flag.setting.split("."):
            node = getattr(node, part)


def test_bad_values_are_refused() -> None:
    with pytest.raises(SystemExit):
        settings_from_args(["--chain", "carrier-pigeon"], base=Settings())
    with pytest.raises(ValueError, match="port"):
        settings_from_args(["--port", "70000"], base=Settings())

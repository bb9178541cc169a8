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
    with pytest.raises(SystemExit):
        settings_from_args(["--port", "70000"], base=Settings())


def test_invalid_settings_are_one_error_line_naming_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        settings_from_args(["--port", "70000", "--external-ip", "miner.example.org"],
                           base=Settings())
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("python -m gaia.miner: error: --port (miner.port): ")
    assert "--external-ip (miner.external_ip): external_ip must be an IP address" in error


def test_serving_an_axon_needs_an_ip_to_publish() -> None:
    with pytest.raises(SystemExit):
        settings_from_args(["--serve-axon"], base=Settings())  # listening on 0.0.0.0
    with pytest.raises(SystemExit):
        settings_from_args(["--serve-axon", "--host", "miner.local"], base=Settings())
    on_host = settings_from_args(["--serve-axon", "--host", "10.1.2.3"], base=Settings())
    assert on_host.miner.axon_ip() == "10.1.2.3"
    published = settings_from_args(["--serve-axon", "--external-ip", "2001:DB8::7"],
                                   base=Settings())
    assert published.miner.axon_ip() == "2001:db8::7"

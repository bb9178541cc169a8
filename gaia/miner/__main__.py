"""``python -m gaia.miner``: the miner's HTTP service and its inference worker, one process.

Settings come from ``GAIA_*`` environment variables and ``.env`` (see ``gaia.config``);
the flags below override them. Example on a local net::

    python -m gaia.miner --wallet.name miner1 --wallet.hotkey default \\
        --chain static --chain.static-path localnet/neurons.json --port 8091 \\
        --model persistence --data-dir /srv/gaia-miner
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from gaia.config import Settings, apply_overrides
from gaia.miner.app import create_app


@dataclass(frozen=True)
class Flag:
    name: str
    setting: str
    help: str
    type: Any = str
    extra: tuple[tuple[str, Any], ...] = ()


FLAGS: tuple[Flag, ...] = (
    Flag("--wallet.name", "wallet.name", "wallet (coldkey) name"),
    Flag("--wallet.hotkey", "wallet.hotkey", "hotkey name inside the wallet"),
    Flag("--wallet.path", "wallet.path", "directory holding the wallets", Path),
    Flag("--subtensor.network", "chain.network", "bittensor network (finney, test, ws://...)"),
    Flag("--netuid", "chain.netuid", "subnet uid", int),
    Flag("--chain", "chain.kind", "where the metagraph comes from",
         extra=(("choices", ["bittensor", "static"]),)),
    Flag("--chain.static-path", "chain.static_path", "neurons JSON file for --chain static", Path),
    Flag("--metagraph-refresh-s", "chain.metagraph_refresh_s", "seconds between metagraph reads",
         float),
    Flag("--host", "miner.host", "address to listen on"),
    Flag("--port", "miner.port", "port to listen on", int),
    Flag("--data-dir", "miner.data_dir", "miner state: SQLite file and forecast stores", Path),
    Flag("--database-url", "miner.database_url",
         "database URL (default: SQLite under --data-dir; postgresql://... for PostgreSQL)"),
    Flag("--model", "miner.model",
         "forecast model: a registered name, or package.module:factory for your own"),
    Flag("--inference-concurrency", "miner.inference_concurrency", "jobs inferring at once", int),
    Flag("--max-cycle-age-hours", "miner.max_cycle_age_hours",
         "refuse GFS cycles older than this (422)", float),
    Flag("--forecast-retention-days", "miner.forecast_retention_days",
         "delete finished forecasts after this many days", float),
    Flag("--min-validator-stake", "miner.min_validator_stake",
         "minimum stake of a validator permit holder to be served", float),
    Flag("--validator-allowlist", "miner.validator_allowlist",
         "hotkeys served whatever the metagraph says (repeatable)", extra=(("action", "append"),)),
    Flag("--max-body-bytes", "miner.max_body_bytes", "largest request body accepted (413)", int),
    Flag("--rate-limit-per-minute", "miner.rate_limit_per_minute",
         "requests per validator hotkey per minute (429)", int),
    Flag("--file-rate-limit-per-minute", "miner.file_rate_limit_per_minute",
         "forecast file reads per validator hotkey per minute (429)", int),
    Flag("--serve-axon", "miner.serve_axon", "publish ip:port on the chain at start",
         extra=(("action", "store_const"), ("const", True))),
    Flag("--external-ip", "miner.external_ip", "address to publish with --serve-axon"),
    Flag("--gfs.base-url", "data.gfs_base_url", "GFS archive base URL"),
    Flag("--gfs.fallback-url", "data.gfs_fallback_url",
         "second GFS base URL tried on failure ('' for none)"),
    Flag("--data.cache-dir", "data.cache_dir", "cache of downloaded GFS messages", Path),
    Flag("--data.download-concurrency", "data.download_concurrency",
         "parallel GFS range requests", int),
    Flag("--data.http-timeout-s", "data.http_timeout_s", "timeout of one GFS request", float),
    Flag("--log-level", "log_level", "logging level",
         extra=(("choices", ["DEBUG", "INFO", "WARNING", "ERROR"]),)),
)


def _current(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def build_parser(defaults: Settings | None = None) -> argparse.ArgumentParser:
    """The CLI; each option's help shows the value it overrides (from env/.env/defaults)."""
    defaults = defaults or Settings()
    parser = argparse.ArgumentParser(
        prog="python -m gaia.miner",
        description="Gaia weather miner: answers validators' signed requests, forecasts from "
        "GFS, serves the signed forecast store. Flags override GAIA_* settings.",
    )
    for flag in FLAGS:
        help_text = f"{flag.help} (now: {_current(defaults, flag.setting)})"
        options: dict[str, Any] = {"dest": flag.setting, "help": help_text, "default": None}
        options.update(flag.extra)
        if options.get("action") != "store_const" and "choices" not in options:
            options["metavar"] = flag.setting.rsplit(".", 1)[-1].upper()
        if options.get("action") not in ("store_const", "append"):
            options["type"] = flag.type
        parser.add_argument(flag.name, **options)
    return parser


def settings_from_args(argv: Sequence[str] | None, base: Settings | None = None) -> Settings:
    base = base or Settings()
    args = build_parser(base).parse_args(argv)
    overrides = {flag.setting: getattr(args, flag.setting) for flag in FLAGS}
    return apply_overrides(base, overrides)


def main(argv: Sequence[str] | None = None) -> None:
    settings = settings_from_args(argv)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.miner.host,
        port=settings.miner.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()

"""``python -m gaia.miner``: the miner's HTTP service and its inference worker, one process.

Settings come from ``GAIA_*`` environment variables and ``.env`` (see ``gaia.config``);
the flags below override them. Example on a local net::

    python -m gaia.miner --wallet.name miner1 --wallet.hotkey default \\
        --chain static --chain.static-path localnet/neurons.json --port 8091 \\
        --model persistence --data-dir /srv/gaia-miner

With Microsoft Aurora (``pip install 'gaia-weather[aurora]'``; files fetched once with
``python -m gaia.miner model fetch aurora``, see README "Running a miner with Aurora")::

    python -m gaia.miner ... --model aurora --aurora.variant Aurora \\
        --aurora.checkpoint models/aurora-0.25-finetuned.ckpt --device cuda
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from gaia.cli import (
    GFS_FLAGS,
    LOG_FLAGS,
    WALLET_AND_CHAIN_FLAGS,
    Flag,
    add_flags,
    configure_logging,
    env_settings,
    parse_settings,
)
from gaia.config import Settings
from gaia.miner import model_command
from gaia.miner.app import create_app
from gaia.miner.runtime import MinerRuntime
from gaia.miner.server import DESCRIPTORS_BESIDE_CONNECTIONS, raise_descriptor_limit, server_config
from gaia.miner.startup import StartupError, check_database
from gaia.tasks.defined_tasks.weather.inference.aurora_variants import VARIANTS

MINER_FLAGS: tuple[Flag, ...] = (
    Flag("--host", "miner.host", "address to listen on"),
    Flag("--port", "miner.port", "port to listen on", int),
    Flag("--data-dir", "miner.data_dir", "miner state: SQLite file and forecast stores", Path),
    Flag("--database-url", "miner.database_url",
         "database URL (default: SQLite under --data-dir; postgresql://... for PostgreSQL)"),
    Flag("--model", "miner.model",
         "forecast model: a registered name, or package.module:factory for your own"),
    Flag("--inference-concurrency", "miner.inference_concurrency", "jobs inferring at once", int),
    Flag("--fetch-concurrency", "miner.fetch_concurrency", "jobs fetching GFS inputs at once",
         int),
    Flag("--job-max-attempts", "miner.job_max_attempts",
         "runs of one job in all: a failed job is restarted by initiate-fetch until then", int),
    Flag("--job-retry-backoff-s", "miner.job_retry_backoff_s",
         "seconds before a failed job may run again; doubled after each further failure",
         float),
    Flag("--max-cycle-age-hours", "miner.max_cycle_age_hours",
         "refuse GFS cycles older than this (422)", float),
    Flag("--forecast-retention-days", "miner.forecast_retention_days",
         "keep each forecast this many days after its GFS init (at least the protocol's 16)",
         float),
    Flag("--early-lead-retention-hours", "miner.early_lead_retention_hours",
         "keep the chunks of day-1-only leads this many hours after init (at least 48)", float),
    Flag("--maintenance-interval-s", "miner.maintenance_interval_s",
         "seconds between retention purges", float),
    Flag("--min-validator-stake", "miner.min_validator_stake",
         "minimum stake, in the subnet's alpha (the metagraph's total_stake), of a validator "
         "permit holder to be served", float),
    Flag("--validator-allowlist", "miner.validator_allowlist",
         "hotkeys served whatever the metagraph says (repeatable)", extra=(("action", "append"),)),
    Flag("--max-body-bytes", "miner.max_body_bytes", "largest request body accepted (413)", int),
    Flag("--rate-limit-per-minute", "miner.rate_limit_per_minute",
         "requests per validator hotkey per minute (429)", int),
    Flag("--file-rate-limit-per-minute", "miner.file_rate_limit_per_minute",
         "forecast file reads per validator hotkey per minute (429)", int),
    Flag("--refused-per-address-per-minute", "miner.refused_per_address_per_minute",
         "refused (401/403) requests per client address per minute before its requests are "
         "refused unverified (429)", int),
    Flag("--max-connections", "miner.max_connections",
         "open HTTP connections in all (more are closed when accepted)", int),
    Flag("--max-connections-per-address", "miner.max_connections_per_address",
         "open HTTP connections per client address (IPv6: per /64)", int),
    Flag("--request-read-timeout-s", "miner.request_read_timeout_s",
         "seconds a client has to send a whole request, headers and body", float),
    Flag("--api-docs", "miner.api_docs", "serve /docs and /openapi.json (to anyone)",
         extra=(("action", "store_const"), ("const", True))),
    Flag("--serve-axon", "miner.serve_axon",
         "publish ip:port on the chain at start when the chain has another address, and "
         "check again every metagraph refresh (a refused publish is retried then)",
         extra=(("action", "store_const"), ("const", True))),
    Flag("--external-ip", "miner.external_ip",
         "IP address to publish with --serve-axon (an address, not a hostname)"),
)
AURORA_FLAGS: tuple[Flag, ...] = (
    Flag("--device", "miner.device", "where torch models run (auto: CUDA when there is one)",
         extra=(("choices", ["auto", "cuda", "cpu"]),)),
    Flag("--aurora.variant", "miner.aurora.variant",
         f"Aurora network: {', '.join(VARIANTS)}"),
    Flag("--aurora.checkpoint", "miner.aurora.checkpoint",
         "local checkpoint file of that variant (see `python -m gaia.miner model fetch`)", Path),
    Flag("--aurora.checkpoint-sha256", "miner.aurora.checkpoint_sha256",
         "refuse to start unless the checkpoint has this sha256"),
    Flag("--aurora.statics", "miner.aurora.statics",
         "lsm/z/slt file (Aurora's .pickle or netCDF); unset: from each cycle's GFS f000", Path),
    Flag("--aurora.grid-deg", "miner.aurora.grid_deg",
         "grid of the GFS inputs, which a statics file must be on", float),
)
FLAGS = WALLET_AND_CHAIN_FLAGS + MINER_FLAGS + AURORA_FLAGS + GFS_FLAGS + LOG_FLAGS


def build_parser(defaults: Settings | None = None) -> argparse.ArgumentParser:
    """The CLI; each option's help shows the value it overrides (from env/.env/defaults)."""
    defaults = defaults or Settings()
    parser = argparse.ArgumentParser(
        prog="python -m gaia.miner",
        description="Gaia weather miner: answers validators' signed requests, forecasts from "
        "GFS, serves the signed forecast store. Flags override GAIA_* settings. "
        "`python -m gaia.miner model --help`: fetch and check a model's files.",
    )
    add_flags(parser, FLAGS, defaults)
    return parser


def settings_from_args(argv: Sequence[str] | None, base: Settings | None = None) -> Settings:
    """Settings from ``argv`` over ``base``; invalid ones exit with usage and one error line."""
    base = base or env_settings("python -m gaia.miner")
    return parse_settings(build_parser(base), argv, FLAGS, base)[1]


def prepared_runtime(settings: Settings) -> MinerRuntime:
    """The runtime, its wallet, model, data directory and database checked (StartupError)."""
    runtime = MinerRuntime(settings)
    asyncio.run(check_database(runtime.db))
    return runtime


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["model"]:
        sys.exit(model_command.main(args[1:]))
    settings = settings_from_args(args)
    configure_logging(settings.log_level)
    try:
        runtime = prepared_runtime(settings)
    except StartupError as error:
        sys.exit(f"python -m gaia.miner: error: {error}")
    raise_descriptor_limit(settings.miner.max_connections + DESCRIPTORS_BESIDE_CONNECTIONS)
    config = server_config(
        create_app(settings, runtime),
        settings.miner,
        metrics=runtime.metrics,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:  # the lifespan failed, or the port is taken (uvicorn said why)
        sys.exit(3)


if __name__ == "__main__":
    main()

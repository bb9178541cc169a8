"""``python -m gaia.validator``: the validator neuron (scheduler, job workers, weights).

``python -m gaia.validator worker`` runs job workers only: start as many as you like, on any
host, against the same database. Settings come from ``GAIA_*`` environment variables and
``.env`` (see ``gaia.config``); the flags below override them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from gaia.cli import (
    AXON_POLICY_FLAGS,
    DATABASE_FLAGS,
    GFS_FLAGS,
    LOG_FLAGS,
    RETENTION_FLAGS,
    WALLET_AND_CHAIN_FLAGS,
    Flag,
    add_flags,
    configure_logging,
    env_settings,
    parse_settings,
)
from gaia.config import Settings
from gaia.database.connection import DatabaseUnavailable
from gaia.database.migrations import SchemaOutOfDate

VALIDATOR_FLAGS: tuple[Flag, ...] = (
    Flag("--workers", "validator.workers", "concurrent job handlers in this process", int),
    Flag("--schedule-hour", "validator.schedule_hour_utc", "UTC hour of the daily run", int),
    Flag("--backoff-scale", "validator.backoff_scale",
         "multiply every retry delay (tests and local nets shrink it)", float),
    Flag("--poll-interval-s", "validator.poll_interval_s", "seconds between miner polls", float),
    Flag("--lease-s", "validator.lease_s", "job lease; a dead worker's jobs return after it",
         float),
    Flag("--shutdown-grace", "validator.shutdown_grace_s",
         "on SIGTERM, seconds running jobs may take to finish", float),
    Flag("--weights-window", "validator.weights_window_runs", "scored runs that make weights",
         int),
    Flag("--weights-interval-s", "validator.weights_interval_s", "seconds between weight sets",
         float),
    Flag("--fallback-weight-uid", "validator.fallback_weight_uid",
         "uid that gets the whole weight when no score is positive", int),
    Flag("--paused", "validator.paused",
         "create no run and start no miner chain, whatever `admin pause`/`resume` set; started "
         "chains, metagraph sync and weights go on",
         extra=(("action", "store_const"), ("const", True))),
    Flag("--grid-deg", "validator.grid_deg",
         "grid spacing new runs check manifests against (default: the protocol's 0.25)", float),
    Flag("--scoring-processes", "validator.scoring_processes",
         "processes for heavy scoring (unset: what this machine can give; 0: in this process)",
         int),
    Flag("--era5.url", "data.era5_url", "ERA5 zarr store (truth)"),
    Flag("--climatology.url", "data.climatology_url", "ERA5 climatology zarr store"),
    Flag("--data.reference-cache-dir", "data.reference_cache_dir",
         "this host's cache of ERA5 truth, climatology and the GFS day-1 reference, shared by "
         "its scoring processes (default: <cache-dir>/references)", Path),
    Flag("--data.reference-cache-max-gb", "data.reference_cache_max_gb",
         "disk the reference cache keeps after each fill", float),
    Flag("--metrics.port", "metrics.port",
         "serve unsigned /metrics and /healthz on this port (unset: no listener)", int),
    Flag("--metrics.host", "metrics.host", "address the /metrics listener binds"),
    Flag("--metrics.unclaimed-after-s", "metrics.unclaimed_after_s",
         "/healthz is 503 once a due job waited this long and this worker claimed nothing",
         float),
)
FLAGS = (DATABASE_FLAGS + WALLET_AND_CHAIN_FLAGS + AXON_POLICY_FLAGS + GFS_FLAGS + VALIDATOR_FLAGS
         + RETENTION_FLAGS + LOG_FLAGS)


def build_parser(defaults: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gaia.validator",
        description="Gaia weather validator: creates the daily forecast run, queries every "
        "miner in parallel, scores forecasts against GFS (day 1) and ERA5, and sets weights. "
        "Run `alembic upgrade head` first. Flags override GAIA_* settings.",
    )
    parser.add_argument(
        "mode", nargs="?", choices=["run", "worker"], default="run",
        help="run: scheduler + workers + weights (default); worker: job workers only",
    )
    add_flags(parser, FLAGS, defaults)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    base = env_settings("python -m gaia.validator")
    args, settings = parse_settings(build_parser(base), argv, FLAGS, base)
    configure_logging(settings.log_level)
    from gaia.validator.listener import ListenerUnavailable
    from gaia.validator.runtime import WalletError, run_validator

    try:
        asyncio.run(run_validator(settings, with_scheduler=args.mode == "run"))
    except (SchemaOutOfDate, WalletError, DatabaseUnavailable, ListenerUnavailable) as error:
        print(f"gaia.validator: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

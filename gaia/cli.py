"""Command-line flags in bittensor's style, mapped onto :class:`gaia.config.Settings`.

Each flag names the dotted setting it overrides; its help shows the value in force (from the
environment, ``.env`` or the default), and a flag left out changes nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gaia.config import Settings, apply_overrides


@dataclass(frozen=True)
class Flag:
    name: str
    setting: str
    help: str
    type: Any = str
    extra: tuple[tuple[str, Any], ...] = ()


WALLET_AND_CHAIN_FLAGS: tuple[Flag, ...] = (
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
)

GFS_FLAGS: tuple[Flag, ...] = (
    Flag("--gfs.base-url", "data.gfs_base_url", "GFS archive base URL"),
    Flag("--gfs.fallback-url", "data.gfs_fallback_url",
         "second GFS base URL tried on failure ('' for none)"),
    Flag("--data.cache-dir", "data.cache_dir", "cache of downloaded GFS messages", Path),
    Flag("--data.download-concurrency", "data.download_concurrency",
         "parallel GFS range requests", int),
    Flag("--data.http-timeout-s", "data.http_timeout_s",
         "default timeout of one HTTP request: GFS, ERA5, miners' forecast files (calls to a "
         "miner's API use their job's timeout instead)", float),
    Flag("--data.gfs-cache-max-gb", "data.gfs_cache_max_gb",
         "disk the GFS message cache keeps after each prune", float),
    Flag("--data.gfs-cache-max-age-days", "data.gfs_cache_max_age_days",
         "days a GFS cycle nobody read stays in the cache", float),
)

RETENTION_FLAGS: tuple[Flag, ...] = (
    Flag("--run-retention-days", "validator.run_retention_days",
         "days finished runs, their responses and scores are kept", float),
    Flag("--retention-batch-rows", "validator.retention_batch_rows",
         "rows one purge transaction deletes at most", int),
)

AXON_POLICY_FLAGS: tuple[Flag, ...] = (
    Flag("--allow-private-axons", "validator.allow_private_axons",
         "also query miners on loopback, link-local and private addresses (local nets)",
         extra=(("action", "store_const"), ("const", True))),
)

DATABASE_FLAGS: tuple[Flag, ...] = (
    Flag("--database-url", "database_url", "PostgreSQL URL of the validator database"),
)

LOG_FLAGS: tuple[Flag, ...] = (
    Flag("--log-level", "log_level", "logging level",
         extra=(("choices", ["DEBUG", "INFO", "WARNING", "ERROR"]),)),
)


def current_value(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def add_flags(parser: argparse.ArgumentParser, flags: Iterable[Flag], defaults: Settings) -> None:
    for flag in flags:
        help_text = f"{flag.help} (now: {current_value(defaults, flag.setting)})"
        options: dict[str, Any] = {"dest": flag.setting, "help": help_text, "default": None}
        options.update(flag.extra)
        if options.get("action") != "store_const" and "choices" not in options:
            options["metavar"] = flag.setting.rsplit(".", 1)[-1].upper()
        if options.get("action") not in ("store_const", "append"):
            options["type"] = flag.type
        parser.add_argument(flag.name, **options)


class SettingsError(ValueError):
    """Settings that cannot be used; the message names each setting (and its flag) and why."""


def describe_invalid(error: ValidationError, name_of: Callable[[str], str]) -> str:
    """One line for every problem: ``name (setting): reason``."""
    problems = []
    for problem in error.errors():
        dotted = ".".join(str(part) for part in problem["loc"])
        reason = problem["msg"].removeprefix("Value error, ")
        name = name_of(dotted)
        where = f"{name} ({dotted})" if name != dotted else dotted
        problems.append(f"{where}: {reason}" if where else reason)
    return "; ".join(problems)


def env_variable(dotted: str) -> str:
    """The environment variable of a dotted setting: ``miner.port`` → ``GAIA_MINER__PORT``."""
    return "GAIA_" + dotted.upper().replace(".", "__") if dotted else dotted


def settings_from(args: argparse.Namespace, flags: Sequence[Flag], base: Settings) -> Settings:
    """``base`` with the flags given in ``args``; :class:`SettingsError` when invalid."""
    overrides = {flag.setting: getattr(args, flag.setting, None) for flag in flags}
    try:
        return apply_overrides(base, overrides)
    except ValidationError as error:
        flag_of = {flag.setting: flag.name for flag in flags}
        raise SettingsError(
            describe_invalid(error, lambda dotted: flag_of.get(dotted, dotted))
        ) from None


def env_settings(prog: str) -> Settings:
    """The settings from ``GAIA_*`` variables and ``.env``; invalid ones end the program with
    one line naming each variable's setting and exit status 2."""
    try:
        return Settings()
    except ValidationError as error:
        problems = describe_invalid(error, env_variable)
        print(f"{prog}: error: invalid setting in the GAIA_* environment or .env: {problems}",
              file=sys.stderr)
        raise SystemExit(2) from None


def parse_settings(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, flags: Sequence[Flag],
    base: Settings,
) -> tuple[argparse.Namespace, Settings]:
    """Parse ``argv``; invalid settings end the program the way a bad flag does (usage, one
    ``error:`` line, exit status 2)."""
    args = parser.parse_args(argv)
    try:
        return args, settings_from(args, flags, base)
    except SettingsError as error:
        parser.error(str(error))


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet = max(logging.WARNING, logging.getLevelName(level))
    # bittensor's transport logs each failed connection attempt; the chain client reports
    # the failure itself, once, naming the operation
    for noisy in ("httpx", "httpcore", "asyncio", "bittensor"):
        logging.getLogger(noisy).setLevel(quiet)

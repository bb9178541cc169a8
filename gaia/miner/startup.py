"""What the miner needs before it serves, each checked once with one clear line when it fails.

Each failure here is an operator's setting (a wallet that is not there, a model name that
names nothing, a data directory that cannot be created, a database that cannot be opened),
so it becomes :class:`StartupError` naming the flag; ``python -m gaia.miner`` prints it and
exits with status 1 before the server starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bittensor as bt
from sqlalchemy.exc import ArgumentError

from gaia.chain.wallet import WalletUnreadable, open_wallet
from gaia.config import MinerSettings, Settings
from gaia.database.connection import DatabaseUnavailable, check_connection, redacted
from gaia.miner.database import MinerDatabase
from gaia.miner.models import load_model
from gaia.tasks.defined_tasks.weather.inference.aurora_loader import AuroraSetupError
from gaia.tasks.defined_tasks.weather.inference.base import ForecastModel


class StartupError(RuntimeError):
    """A setting the miner cannot start with; the message names it and says why."""


def load_wallet(settings: Settings) -> bt.Wallet:
    """The wallet with its hotkey read (it signs every forecast manifest)."""
    wallet = settings.wallet
    try:
        return open_wallet(wallet)
    except WalletUnreadable as error:
        raise StartupError(
            f"--wallet.name {wallet.name!r} --wallet.hotkey {wallet.hotkey!r} "
            f"(--wallet.path {wallet.path}): cannot read the hotkey: {error.reason}"
        ) from error


def model_options(miner: MinerSettings) -> dict[str, Any]:
    """The factory options of the model ``miner.model`` names (only Aurora has some)."""
    if miner.model != "aurora":
        return {}
    return {**miner.aurora.model_dump(), "device": miner.device}


def build_model(miner: MinerSettings) -> ForecastModel:
    spec = miner.model
    try:
        return load_model(spec, model_options(miner))
    except AuroraSetupError as error:
        flag = {"model": f"--model {spec}", "device": f"--device {miner.device}"}.get(
            error.setting, f"--aurora.{error.setting.replace('_', '-')}")
        raise StartupError(f"{flag}: {error}") from error
    except ValueError as error:  # UnknownModel, ModelLoadError, bad options
        raise StartupError(f"--model {spec!r}: {error}") from error


def make_directory(path: Path, flag: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StartupError(f"{flag} {path}: cannot create {error.filename or path}: "
                           f"{error.strerror or error}") from error
    return path


def open_database(url: str) -> MinerDatabase:
    try:
        return MinerDatabase(url)
    except ArgumentError as error:  # an unparsable URL or an unknown database driver
        raise StartupError(f"--database-url {redacted(url)}: {error}") from error


async def check_database(db: MinerDatabase) -> None:
    """Connect and create the miner's tables, then release the connections."""
    try:
        await check_connection(db.engine, db.url)
        await db.create_tables()
    except DatabaseUnavailable as error:
        raise StartupError(f"--database-url: {error}") from error
    finally:
        await db.close()

"""The subnet on loopback: the cached local archive and its server, fresh wallets, a static
chain, miner processes (one per :class:`MinerSpec`) and validator worker processes."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import bittensor as bt

from gaia.chain.client import Neuron
from gaia.chain.static import write_neurons
from gaia.database.local_postgres import free_port
from gaia.localnet.processes import ManagedProcess, stop_all
from gaia.tasks.defined_tasks.weather.data.archive import ArchiveInfo, build_archive
from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer

log = logging.getLogger(__name__)

ARCHIVE_START = datetime(2025, 1, 1, tzinfo=UTC)
ARCHIVE_DAYS = 12  # truth for 10-day forecasts of the first cycles, and a day to spare
VALIDATOR_STAKE = 50_000.0
ANY_CYCLE_AGE_HOURS = 24 * 365 * 50  # the archive's cycles are old; miners must accept them
# validator settings that make one run take about a minute instead of days: polls every
# 0.5 s, retry delays ×0.01. Scoring runs in two processes so the workers' event loop stays
# free for lease heartbeats; the lease is generous, as no worker is killed here; on SIGTERM
# running jobs get 2 s.
FAST_VALIDATOR_FLAGS = ("--poll-interval-s", "0.5", "--backoff-scale", "0.01", "--lease-s", "30",
                        "--scoring-processes", "2", "--workers", "16", "--shutdown-grace", "2")
# a worker is done 2 s after SIGTERM, but its scoring pool may still be busy: kill it then
WORKER_STOP_GRACE_S = 6.0


@dataclass(frozen=True)
class MinerSpec:
    role: str  # name of its wallet and data folder
    model: str  # a model registered in gaia.tasks.defined_tasks.weather.inference
    dies: bool = False  # SIGKILLed once it has accepted its job
    model_args: tuple[str, ...] = ()  # the model's own flags (Aurora's checkpoint, ...)


DEFAULT_MODELS = ("spectral_advection", "persistence", "noisy_persistence")
DYING_MINER = 3  # the fourth miner is killed once it has accepted its job


def miner_roster(count: int, models: Sequence[str] | None = None,
                 model_args: Mapping[str, tuple[str, ...]] | None = None) -> list[MinerSpec]:
    """``count`` ≥ 4 miners. By default: a good model, persistence, a poor model, one that
    dies (persistence), then the three models again in turn. ``models`` names each miner's
    model instead (one per miner; the fourth still dies); ``model_args`` adds a model's
    flags to every miner that runs it."""
    if count < 4:
        raise ValueError(f"--miners {count}: the localnet needs at least 4 miners")
    if models is None:
        cycle = [*DEFAULT_MODELS, "persistence"]
        models = cycle + [DEFAULT_MODELS[(i - 4) % 3] for i in range(4, count)]
    if len(models) != count:
        raise ValueError(f"{len(models)} models for {count} miners")
    extra = model_args or {}
    return [MinerSpec(f"miner{i + 1}", model, dies=i == DYING_MINER,
                      model_args=extra.get(model, ())) for i, model in enumerate(models)]


def cached_archive(root: Path, grid_deg: float, seed: int) -> ArchiveInfo:
    """The archive for (grid, seed) under ``root``, built on first use and reused after."""
    target = root / f"grid{grid_deg:g}-seed{seed}"
    if (target / "archive.json").exists():
        info = ArchiveInfo.load(target)
        if info.is_current and (info.grid_deg, info.seed, info.start, info.days) == (
                grid_deg, seed, ARCHIVE_START, ARCHIVE_DAYS):
            return info
    log.info("building the local archive in %s (grid %g°, seed %d)", target, grid_deg, seed)
    return build_archive(target, grid_deg=grid_deg, start=ARCHIVE_START, days=ARCHIVE_DAYS,
                         seed=seed)


def make_wallet(root: Path, name: str) -> bt.Wallet:
    """A wallet with an unencrypted coldkey and hotkey under ``root`` (local use only)."""
    wallet = bt.Wallet(name=name, hotkey="default", path=str(root))
    wallet.create_new_coldkey(use_password=False, overwrite=True, suppress=True)
    wallet.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
    return wallet


@dataclass
class Member:
    spec: MinerSpec | None  # None for the validator
    wallet: bt.Wallet
    uid: int
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def hotkey(self) -> str:
        return str(self.wallet.hotkey.ss58_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def neuron(self) -> Neuron:
        validator = self.spec is None
        return Neuron(uid=self.uid, hotkey=self.hotkey, coldkey=self.wallet.coldkeypub.ss58_address,
                      ip=None, port=None, stake=VALIDATOR_STAKE if validator else 0.0,
                      validator_permit=validator)


@dataclass
class Subnet:
    """Everything under ``root`` (made anew for each localnet run)."""

    root: Path
    archive: ArchiveInfo
    server: ArchiveServer
    validator: Member
    miners: list[Member]
    workers: list[ManagedProcess] = field(default_factory=list)

    @property
    def chain_path(self) -> Path:
        return self.root / "chain" / "neurons.json"

    @property
    def gfs_base_url(self) -> str:
        return self.archive.gfs_base_url(self.server.url)

    def miner_args(self, miner: Member, *, any_cycle_age: bool = True) -> list[str]:
        """Flags of one miner; ``any_cycle_age`` lets it accept the archive's old cycles
        (a hindcast), without it the miner keeps its production window."""
        assert miner.spec is not None
        data_dir = self.root / miner.spec.role
        age = ["--max-cycle-age-hours", str(ANY_CYCLE_AGE_HOURS)] if any_cycle_age else []
        return [*_wallet_flags(miner.wallet), "--chain", "static",
                "--chain.static-path", str(self.chain_path), "--host", "127.0.0.1",
                "--port", str(miner.port), "--data-dir", str(data_dir),
                "--model", miner.spec.model, "--gfs.base-url", self.gfs_base_url,
                "--gfs.fallback-url", "", "--data.cache-dir", str(data_dir / "gfs-cache"),
                *age, "--serve-axon", "--external-ip", "127.0.0.1", *miner.spec.model_args]

    def validator_args(self, database_url: str, *, fast: bool = True) -> list[str]:
        """Flags of a validator; ``fast`` adds the worker mode and the shrunk durations of the
        one-run localnet, without it the settings are production's."""
        mode = ["worker"] if fast else []
        return [*mode, "--database-url", database_url, *_wallet_flags(self.validator.wallet),
                "--chain", "static", "--chain.static-path", str(self.chain_path),
                "--allow-private-axons",  # every miner of a local net is on loopback
                "--grid-deg", f"{self.archive.grid_deg:g}",  # the archive's, not 0.25°
                "--gfs.base-url", self.gfs_base_url, "--gfs.fallback-url", "",
                "--data.cache-dir", str(self.root / "validator" / "cache"),
                "--era5.url", self.archive.era5_url(self.server.url),
                "--climatology.url", self.archive.climatology_url(self.server.url),
                *(FAST_VALIDATOR_FLAGS if fast else ())]

    def start_miners(self) -> None:
        for miner in self.miners:
            assert miner.spec is not None
            miner.process = ManagedProcess(
                miner.spec.role, "gaia.miner", self.miner_args(miner),
                self.root / "logs" / f"{miner.spec.role}.log").start()
        for miner in self.miners:
            assert miner.process is not None
            miner.process.wait_for_port(miner.port)

    def start_validator(self, database_url: str, processes: int) -> None:
        for index in range(processes):
            self.workers.append(ManagedProcess(
                f"validator-worker-{index + 1}", "gaia.validator",
                self.validator_args(database_url),
                self.root / "logs" / f"validator-worker-{index + 1}.log",
                stop_grace_s=WORKER_STOP_GRACE_S).start())

    def processes(self) -> list[ManagedProcess]:
        return self.workers + [m.process for m in self.miners if m.process is not None]

    def write_process_list(self) -> Path:
        """``processes.json``: name → pid of every child (each leads its own process group)."""
        path = self.root / "processes.json"
        path.write_text(json.dumps({p.name: p.pid for p in self.processes()}, indent=1))
        return path

    def stop(self) -> None:
        """Validator workers first (no new requests), then the miners, then the archive."""
        stop_all(self.workers)
        stop_all([m.process for m in self.miners if m.process is not None])
        self.server.stop()


def _wallet_flags(wallet: bt.Wallet) -> list[str]:
    return ["--wallet.name", wallet.name, "--wallet.hotkey", wallet.hotkey_str,
            "--wallet.path", str(wallet.path)]


def clear_away(root: Path) -> threading.Thread:
    """Move ``root`` (a previous session's subnet) aside and delete it in a background thread:
    its tens of thousands of forecast files take many seconds to delete on a slow disk."""
    discarded = root.parent / "discarded"
    if root.exists():
        discarded.mkdir(parents=True, exist_ok=True)
        root.rename(discarded / f"{root.name}-{time.time_ns()}")
    thread = threading.Thread(target=shutil.rmtree, args=(discarded,),
                              kwargs={"ignore_errors": True}, name="clear-away", daemon=True)
    thread.start()
    return thread


def new_subnet(root: Path, archive: ArchiveInfo, roster: list[MinerSpec]) -> Subnet:
    """Wallets and the chain file under an empty ``root``, the archive server started."""
    wallets = root / "wallets"
    validator = Member(None, make_wallet(wallets, "validator"), uid=0)
    miners = [Member(spec, make_wallet(wallets, spec.role), uid=i + 1)
              for i, spec in enumerate(roster)]
    write_neurons(root / "chain" / "neurons.json",
                  [validator.neuron()] + [m.neuron() for m in miners])
    server = ArchiveServer(archive.root).start()
    return Subnet(root, archive, server, validator, miners)

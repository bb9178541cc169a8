"""Settings for every process of the project: one object, built once in each ``__main__``.

Values come, highest first, from CLI flags (applied by the entry points through
:func:`apply_overrides`), ``GAIA_*`` environment variables, a ``.env`` file, and the defaults
below. Nested groups use ``__`` in the environment: ``GAIA_MINER__PORT=8091``. No other module
reads the environment: components receive the part of the settings they need.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG

if TYPE_CHECKING:
    from gaia.tasks.defined_tasks.weather.retention import RetentionRule

NOAA_GFS_BUCKET = "https://noaa-gfs-bdp-pds.s3.amazonaws.com"
NOMADS_GFS = "https://nomads.ncep.noaa.gov/pub/data/nccf/com/gfs/prod"
ARCO_ERA5 = "https://storage.googleapis.com/gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3"
WB2_CLIMATOLOGY = (
    "https://storage.googleapis.com/weatherbench2/datasets/"
    "era5-hourly-climatology/1990-2019_6h_1440x721.zarr"
)


class WalletSettings(BaseModel):
    model_config = ConfigDict(frozen=True)  # hashable: a scoring process keys its wallet by it

    name: str = "default"
    hotkey: str = "default"
    path: Path = Path("~/.bittensor/wallets")


class ChainSettings(BaseModel):
    """Where the metagraph comes from and where weights go."""

    kind: Literal["bittensor", "static"] = "bittensor"
    network: str = "finney"
    netuid: int = Field(default=57, ge=0)
    static_path: Path | None = None  # neurons file for kind=static; weights go beside it
    metagraph_refresh_s: float = Field(default=600.0, gt=0)


class DataSettings(BaseModel):
    model_config = ConfigDict(frozen=True)  # hashable: a scoring process keys its sources by it

    gfs_base_url: str = NOAA_GFS_BUCKET
    gfs_fallback_url: str | None = NOMADS_GFS
    era5_url: str = ARCO_ERA5
    climatology_url: str = WB2_CLIMATOLOGY
    cache_dir: Path = Path("~/.cache/gaia")
    download_concurrency: int = Field(default=8, ge=1, le=64)
    http_timeout_s: float = Field(default=30.0, gt=0)
    reference_cache_dir: Path | None = Field(
        default=None, description="the host's ERA5 truth, climatology and GFS day-1 reference "
        "cache, shared by its scoring processes (None: <cache_dir>/references)",
    )
    reference_cache_max_gb: float = Field(
        default=20.0, gt=0, description="disk the reference cache keeps after each fill. A "
        "0.25 degree field is 4.15 MB, one valid time's 69 fields 286 MB. A day's ERA5 "
        "scoring of every run needs one valid time of truth (286 MB) and its climatology; "
        "the climatology is kept a whole WeatherBench-2 chunk at a time (3 hours x 3 days, "
        "2.6 GB for 69 fields), reused by the next days' runs. 20 GB holds two such "
        "climatology chunks, the day-1 references and about a week of truth for catching up",
    )
    reference_idle_hours: float = Field(
        default=30.0, gt=0, description="an entry nobody read for this long is removed; above "
        "24 h so a climatology chunk survives from one daily scoring pass to the next",
    )
    gfs_cache_max_gb: float = Field(
        default=5.0, gt=0, description="disk the GFS message cache under cache_dir keeps after "
        "each prune (validator: about 0.3 GB a day at 0.25 degree; a miner's inputs about 0.1 "
        "GB a cycle); the least recently used cycles go first",
    )
    gfs_cache_max_age_days: float = Field(
        default=3.0, gt=0, description="a GFS cycle nobody read for this long leaves the cache; "
        "above the miner's 48 h cycle age and the validator's day-1 window",
    )


class ValidatorSettings(BaseModel):
    workers: int = Field(
        default=64, ge=1, le=1024,
        description="concurrent job handlers per process; scoring jobs hold one only while "
        "they score (at most scoring_processes of them run at once, the rest wait in the "
        "queue), so the other handlers keep serving miners",
    )
    schedule_hour_utc: int = Field(default=18, ge=0, le=23)
    backoff_scale: float = Field(
        default=1.0, gt=0, description="multiplies every retry delay (local nets shrink it)"
    )
    poll_interval_s: float = Field(default=300.0, gt=0)
    lease_s: float = Field(default=60.0, gt=0)
    shutdown_grace_s: float = Field(
        default=30.0, ge=0, description="on SIGTERM, how long running jobs may finish"
    )
    job_retention_days: float = Field(default=14.0, gt=0)
    run_retention_days: float = Field(
        default=90.0, gt=0, description="finished runs (completed or error) are purged with "
        "their responses, scores and finished jobs this long after their completion (or init "
        "time); at least weights_window_runs + 1 days, and the weights window's runs always stay",
    )
    retention_batch_rows: int = Field(
        default=20_000, ge=1, description="rows one purge transaction deletes at most",
    )
    weights_window_runs: int = Field(
        default=7, ge=1, description="latest day-1-scored live runs averaged into weights "
        "(7 = one week of daily runs; the one source of this number)"
    )
    weights_interval_s: float = Field(default=3600.0, gt=0)
    scoring_processes: int | None = Field(
        default=None, ge=0, description="processes for heavy scoring per worker process, and "
        "how many scoring jobs it runs at once; unset: what the machine can give, one per "
        "usable CPU but one and per 2 GB of available memory, at least one; 0 scores in the "
        "worker itself, one job at a time",
    )
    grid_deg: float = Field(
        default=GRID_DEG, gt=0, description="spacing in degrees of the global grid a new run "
        "records and checks every miner's manifest against (the protocol's; local nets run "
        "their archive's)",
    )
    allow_private_axons: bool = Field(
        default=False,
        description="query miners whose axon is a loopback, link-local, private or other "
        "non-public address (local nets and static chains; never on the public chain)",
    )
    paused: bool = Field(
        default=False, description="this process creates no run and starts no miner chain, "
        "whatever the shared switch in the database says (`admin pause` / `admin resume`); "
        "started chains, the metagraph sync and weights go on",
    )
    fallback_weight_uid: int = Field(
        default=0, ge=0, description="the uid that gets the whole weight when no registered "
        "hotkey has a positive score (uid 0: the subnet owner's, the usual convention), so a "
        "validator never skips setting weights",
    )

    @model_validator(mode="after")
    def _keeps_the_weights_window(self) -> ValidatorSettings:
        """The weights read the latest ``weights_window_runs`` daily runs once their day-1
        phase is over (a day after init): a shorter retention would purge runs they read."""
        needed = self.weights_window_runs + 1
        if self.run_retention_days < needed:
            raise ValueError(
                f"run_retention_days {self.run_retention_days:g} is shorter than the weights "
                f"window needs: at least weights_window_runs + 1 = {needed} days"
            )
        return self


class MetricsSettings(BaseModel):
    """The validator's ``/metrics`` and ``/healthz`` listener (the miner serves both on its
    own port). Unsigned: bind it where only your Prometheus and supervisor reach it."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=0, le=65535, description="None: no listener")
    unclaimed_after_s: float = Field(
        default=900.0, gt=0, description="/healthz is 503 when a due job has waited this long "
        "and this process's worker claimed nothing meanwhile; above the longest job's run time",
    )


class AuroraSettings(BaseModel):
    """The built-in ``aurora`` model (``gaia-weather[aurora]``); see README "Running a miner
    with Aurora". Nothing here is fetched at run time: the files are the operator's."""

    variant: str = "Aurora"  # names in inference/aurora_variants.py
    checkpoint: Path | None = None  # a local .ckpt file of that variant (required)
    checkpoint_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$",
        description="refuse to start unless the checkpoint file has this sha256")
    statics: Path | None = None  # lsm/z/slt file; None: taken from each cycle's GFS f000
    grid_deg: float = Field(
        default=0.25, gt=0, description="grid of the GFS inputs (NOAA's pgrb2.0p25: 0.25); a "
        "statics file must be on it")


class MinerSettings(BaseModel):
    host: str = "0.0.0.0"
    port: int = Field(default=8091, ge=0, le=65535)
    data_dir: Path = Path("~/.gaia/miner")
    database_url: str | None = None  # default: SQLite file under data_dir
    model: str = "spectral_advection"
    device: Literal["auto", "cuda", "cpu"] = "auto"  # for models that run on torch
    aurora: AuroraSettings = Field(default_factory=AuroraSettings)
    inference_concurrency: int = Field(default=1, ge=1)
    # GFS downloads of concurrent jobs queue like inference does: each fetch holds
    # download_concurrency connections and a cycle's inputs in memory
    fetch_concurrency: int = Field(default=1, ge=1, description="jobs fetching GFS at once")
    # A failed job is restarted by the next initiate-fetch only after a backoff (the first
    # wait, doubled after each further failure: 5, 10, 20 min) and at most job_max_attempts
    # runs in all; after that it stays failed.
    job_max_attempts: int = Field(default=4, ge=1)
    job_retry_backoff_s: float = Field(default=300.0, ge=0)
    max_cycle_age_hours: float = Field(default=48.0, gt=0)
    # Retention, counted from the forecast's GFS init time (weather/retention.py): the whole
    # forecast for forecast_retention_days, the chunks of the day-1-only leads for
    # early_lead_retention_hours. Defaults and minimums: the protocol's promise (16 days) and
    # the day-1 window (48 h). A miner may keep longer; shorter is refused at start.
    forecast_retention_days: float = Field(
        default_factory=lambda: _retention().RETENTION_PROMISE / timedelta(days=1), gt=0
    )
    early_lead_retention_hours: float = Field(
        default_factory=lambda: _retention().DAY1_WINDOW / timedelta(hours=1), gt=0
    )
    maintenance_interval_s: float = Field(
        default=600.0, gt=0, description="seconds between retention purges and nonce clean-ups"
    )
    min_validator_stake: float = Field(
        default=1000.0, ge=0,
        description="in the subnet's alpha: the metagraph's total_stake (alpha plus root TAO "
        "at the chain's TAO weight) a validator permit holder needs to be served",
    )
    validator_allowlist: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=16_384, gt=0)
    rate_limit_per_minute: int = Field(default=600, gt=0)
    # forecast file reads have their own budget: one forecast is ~2,800 files
    file_rate_limit_per_minute: int = Field(default=12_000, gt=0)
    # Strangers are limited per client address (IPv6: per /64) before any signature is
    # checked: past this many refused requests a minute, requests are refused unverified.
    refused_per_address_per_minute: int = Field(default=60, gt=0)
    # The HTTP server: open connections in all and per client address, and the time a
    # client has to send a whole request (headers and body) once it connects or starts one.
    # (a validator's client opens up to 32; a local net's validators share one address)
    max_connections: int = Field(default=1024, gt=0)
    max_connections_per_address: int = Field(default=128, gt=0)
    request_read_timeout_s: float = Field(default=10.0, gt=0)
    api_docs: bool = False  # /docs and /openapi.json, served to anyone when on
    serve_axon: bool = False
    external_ip: str | None = None

    @field_validator("external_ip")
    @classmethod
    def _an_ip_literal(cls, value: str | None) -> str | None:
        """The chain stores an axon as an IP number: a hostname cannot be published."""
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(
                f"external_ip must be an IP address such as 203.0.113.7, got {value!r}"
            ) from None

    @model_validator(mode="after")
    def _keeps_the_retention_promise(self) -> MinerSettings:
        self.retention_rule()  # raises RetentionTooShort (a ValueError) when shorter
        return self

    @model_validator(mode="after")
    def _has_an_axon_address(self) -> MinerSettings:
        if self.serve_axon:
            self.axon_ip()
        return self

    def axon_ip(self) -> str:
        """The IP address ``serve_axon`` publishes: ``external_ip``, else ``host``."""
        if self.external_ip is not None:
            return self.external_ip
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            raise ValueError(
                f"serve_axon publishes an IP address and host {self.host!r} is not one: "
                "set external_ip"
            ) from None
        if address.is_unspecified:
            raise ValueError(
                f"serve_axon needs external_ip when the miner listens on all interfaces "
                f"(host {self.host})"
            )
        return str(address)

    def retention_rule(self) -> RetentionRule:
        return _retention().RetentionRule(
            keep=timedelta(days=self.forecast_retention_days),
            early_leads=timedelta(hours=self.early_lead_retention_hours),
        )


def _retention() -> ModuleType:
    """The retention rule's module, imported on use: it loads the forecast store's format
    (bittensor's signing among it), which most readers of the settings never need."""
    from gaia.tasks.defined_tasks.weather import retention

    return retention


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GAIA_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/gaia"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    wallet: WalletSettings = Field(default_factory=WalletSettings)
    chain: ChainSettings = Field(default_factory=ChainSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    validator: ValidatorSettings = Field(default_factory=ValidatorSettings)
    miner: MinerSettings = Field(default_factory=MinerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept plain ``postgresql://`` URLs and use the asyncpg driver for them; the
        validator's database is PostgreSQL (its job queue needs SKIP LOCKED and LISTEN)."""
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if not url.startswith("postgresql+asyncpg://"):
            given = f"a {url.split('://')[0]} URL" if "://" in url else repr(url)
            raise ValueError(f"database_url must be a PostgreSQL URL such as "
                             f"postgresql://user@host:5432/gaia, not {given}")
        return url


def apply_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """Return a copy of ``settings`` with dotted-path overrides (``{"chain.netuid": 3}``).

    ``None`` values are ignored, so argparse defaults of ``None`` mean "not given".
    """
    data = settings.model_dump()
    for dotted, value in overrides.items():
        if value is None:
            continue
        target = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            target = target[part]
        if leaf not in target:
            raise KeyError(f"unknown setting {dotted!r}")
        target[leaf] = value
    return Settings.model_validate(data)

"""The validator's verified reads of a miner's forecast store over signed HTTP.

Every byte is checked against the committed manifest before zarr sees it, and against the
protocol's layout before zarr decodes it (``forecast_layout``: exact metadata and codecs,
each chunk's declared decoded size). A file whose size or sha256 differs, a file the miner
no longer serves (404), a redirect, a manifest that is not the committed one or not signed
by the miner, metadata or a chunk the protocol's writer would not produce, and a file not
delivered in time all raise ``ForecastInvalid`` (the miner is at fault; never retried).
A failed connection and 5xx answers are retried with a short backoff and then raise
``ForecastTransportError`` (nobody's fault yet; the job queue retries later).

Time: a miner gets ``connect_timeout_s`` to accept the connection (failing that is
transport trouble) and then ``max(transfer_floor_s, size / min_rate_bytes_s)`` to deliver
a file of ``size`` bytes. Too slow is ``Invalid``, not ``Retry``: the miner serves files it
wrote ahead of time, so a slow answer is its doing, and a retried slow-loris would hold the
scoring process for every attempt. When the deadline passes the transfer itself is stopped
(the request's task is cancelled and its connection closed), not only the caller's await.

Typical use on the validator::

    signed = await fetch_verified_manifest(client, base_url, job_id, miner_hotkey)
    check_manifest_against_run(signed.manifest, init_time=..., truth_grid=...)
    # commit signed.manifest_hash ... later, possibly in another process:
    signed = await fetch_verified_manifest(client, base_url, job_id, miner_hotkey, committed)
    forecast = await open_verified_forecast(client, base_url, job_id, signed.manifest, committed)
    day1 = await load_lead(forecast, 24)  # reads and verifies only that lead's chunks
"""

from __future__ import annotations

import asyncio
import hashlib
import warnings
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import httpx
import numpy as np
import xarray as xr
from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype

from gaia.net.signed_http import ResponseTooLarge, ResponseTooSlow, SignedClient
from gaia.tasks.defined_tasks.weather.data.grid import (
    GRID_TOLERANCE_DEG,
    Grid,
    GridMismatch,
    check_forecast_grid,
)
from gaia.tasks.defined_tasks.weather.forecast_layout import LayoutInvalid, StoreLayout
from gaia.tasks.defined_tasks.weather.forecast_manifest import (
    Manifest,
    ManifestInvalid,
    SignedManifest,
    format_init_time,
    manifest_hash,
    verify_signed_manifest,
)
from gaia.tasks.defined_tasks.weather.forecast_store import MANIFEST_FILE, chunk_key
from gaia.tasks.defined_tasks.weather.variables import (
    ALL_VARIABLES,
    FORECAST_LEAD_HOURS,
    PRESSURE_LEVELS_HPA,
    PROTOCOL_VERSION,
    is_level_variable,
)


class ForecastInvalid(Exception):
    """The miner's forecast fails verification; ``reason`` says how (maps to ``Invalid``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ForecastTransportError(Exception):
    """The miner could not be read after the retries (maps to ``Retry``)."""


@dataclass(frozen=True)
class FetchPolicy:
    """How verified reads behave: concurrency bound, retries of transport failures, the
    manifest's size limit and the time a miner gets to deliver each file.

    The defaults let a home miner's 20 Mbit/s uplink serve eight concurrent reads (about
    300 KB/s each) and bound a hostile manifest at 21 s, a 0.25° field chunk at about 21 s.
    """

    max_concurrency: int = 8
    attempts: int = 4
    backoff_s: tuple[float, ...] = (0.2, 0.5, 1.0)
    max_manifest_bytes: int = 4 * 1024 * 1024
    connect_timeout_s: float = 5.0
    transfer_floor_s: float = 5.0
    min_rate_bytes_s: float = 256 * 1024

    def deadline_s(self, size: int) -> float:
        """Connect time plus the time a file of ``size`` bytes may take to arrive."""
        return self.connect_timeout_s + max(self.transfer_floor_s, size / self.min_rate_bytes_s)


MAX_FILE_SLACK_BYTES = 64 * 1024
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MISSING_STATUS = frozenset({404, 410})


def forecast_url(base_url: str, job_id: str, key: str) -> str:
    """``{base}/weather/forecasts/{job_id}/{key}`` (job id percent-encoded)."""
    return f"{base_url.rstrip('/')}/weather/forecasts/{quote(job_id, safe='')}/{key}"


async def _fetch_once(
    client: SignedClient, url: str, receiver: str, max_bytes: int, policy: FetchPolicy
) -> tuple[bytes | None, str]:
    """(body, "") on 200; (None, why) when worth retrying; raises when it is not."""
    deadline = policy.deadline_s(max_bytes)
    try:
        response, body = await client.get_limited(
            url, receiver, max_bytes=max_bytes, deadline_s=deadline,
            timeout_s=httpx.Timeout(deadline, connect=policy.connect_timeout_s),
        )
    except (ResponseTooLarge, ResponseTooSlow) as error:
        raise ForecastInvalid(str(error)) from error
    except httpx.RequestError as error:
        return None, f"{type(error).__name__}: {error}"
    status = response.status_code
    if status == 200:
        return body, ""
    if status in MISSING_STATUS:
        raise ForecastInvalid(f"{url} is missing (HTTP {status})")
    if 300 <= status < 400:
        raise ForecastInvalid(f"{url} answered a redirect (HTTP {status}); the protocol has none")
    if status in RETRYABLE_STATUS:
        return None, f"HTTP {status}"
    raise ForecastTransportError(f"{url} answered HTTP {status}")


async def fetch_bytes(
    client: SignedClient, url: str, receiver: str, *, max_bytes: int, policy: FetchPolicy
) -> bytes:
    """A signed GET with retries for transient failures (see the module docstring)."""
    why = ""
    for attempt in range(policy.attempts):
        if attempt:
            await asyncio.sleep(policy.backoff_s[min(attempt - 1, len(policy.backoff_s) - 1)])
        body, why = await _fetch_once(client, url, receiver, max_bytes, policy)
        if body is not None:
            return body
    raise ForecastTransportError(f"{url}: {why} (after {policy.attempts} attempts)")


async def fetch_verified_manifest(
    client: SignedClient,
    base_url: str,
    job_id: str,
    miner_hotkey: str,
    committed_hash: str | None = None,
    policy: FetchPolicy = FetchPolicy(),
) -> SignedManifest:
    """Fetch ``manifest.json``, check the miner's signature, the job id and the commitment.

    With ``committed_hash=None`` (the first fetch) the caller commits ``.manifest_hash``.
    """
    url = forecast_url(base_url, job_id, MANIFEST_FILE)
    document = await fetch_bytes(
        client, url, miner_hotkey, max_bytes=policy.max_manifest_bytes, policy=policy
    )
    try:
        signed = verify_signed_manifest(document, miner_hotkey)
    except ManifestInvalid as error:
        raise ForecastInvalid(str(error)) from error
    if signed.manifest.job_id != job_id:
        raise ForecastInvalid(f"manifest is for job {signed.manifest.job_id!r}, not {job_id!r}")
    if committed_hash is not None and signed.manifest_hash != committed_hash:
        raise ForecastInvalid(
            f"manifest hash {signed.manifest_hash} differs from the committed {committed_hash}"
        )
    return signed


def _check_subset(what: str, declared: Sequence[int] | Sequence[str], allowed: Iterable[object]) -> None:
    if len(set(declared)) != len(declared):
        raise ForecastInvalid(f"manifest lists duplicate {what}: {list(declared)}")
    unknown = [item for item in declared if item not in set(allowed)]
    if unknown:
        raise ForecastInvalid(f"manifest lists {what} outside the run: {unknown}")


def expected_files(manifest: Manifest) -> list[str]:
    """The zarr files the manifest's own declarations require (metadata and every chunk)."""
    keys = ["zarr.json", "lead_hours/zarr.json", "latitude/zarr.json", "longitude/zarr.json"]
    if any(is_level_variable(name) for name in manifest.variables):
        keys.append("level/zarr.json")
    for name in manifest.variables:
        keys.append(f"{name}/zarr.json")
        levels: Sequence[int | None] = (
            range(len(manifest.levels)) if is_level_variable(name) else [None]  # type: ignore[assignment]
        )
        keys += [chunk_key(name, i, lev) for i in range(len(manifest.lead_hours)) for lev in levels]
    return keys


def check_manifest_against_run(
    manifest: Manifest,
    *,
    init_time: datetime | np.datetime64,
    truth_grid: Grid,
    variables: Sequence[str] = ALL_VARIABLES,
    levels: Sequence[int] = PRESSURE_LEVELS_HPA,
    lead_hours: Sequence[int] = FORECAST_LEAD_HOURS,
) -> None:
    """Raise ``ForecastInvalid`` unless the manifest fits the run.

    Init time, protocol and grid must match (``check_forecast_grid``); variables, levels
    and leads may be a subset of the run's (what is missing scores as the baseline) but
    nothing outside it; every field the manifest declares must be listed as a file.
    """
    if manifest.protocol_version != PROTOCOL_VERSION:
        raise ForecastInvalid(f"protocol version {manifest.protocol_version!r}, expected {PROTOCOL_VERSION!r}")
    if manifest.init_time != format_init_time(init_time):
        raise ForecastInvalid(f"init time {manifest.init_time}, expected {format_init_time(init_time)}")
    try:
        check_forecast_grid(manifest.grid.to_grid(), truth_grid)
    except GridMismatch as error:
        raise ForecastInvalid(f"forecast grid does not match the truth grid: {error}") from error
    _check_subset("variables", manifest.variables, variables)
    _check_subset("levels", manifest.levels, levels)
    _check_subset("lead hours", manifest.lead_hours, lead_hours)
    if list(manifest.lead_hours) != sorted(manifest.lead_hours):
        raise ForecastInvalid(f"lead hours are not increasing: {list(manifest.lead_hours)}")
    missing = [key for key in expected_files(manifest) if key not in manifest.files]
    if missing:
        raise ForecastInvalid(f"manifest does not list {len(missing)} declared files, e.g. {missing[:3]}")
    _check_file_sizes(manifest)


def _check_file_sizes(manifest: Manifest) -> None:
    """No file may be larger than one raw float32 field plus slack (bounds validator memory)."""
    n_lat, n_lon = manifest.grid.n_lat, manifest.grid.n_lon
    limit = 4 * n_lat * n_lon + MAX_FILE_SLACK_BYTES
    oversized = [key for key, entry in manifest.files.items() if entry.size > limit]
    if oversized:
        raise ForecastInvalid(f"{len(oversized)} files exceed {limit} bytes, e.g. {oversized[:3]}")


def _apply_range(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    return data[-byte_range.suffix :] if byte_range.suffix else b""


class VerifiedHttpStore(Store):
    """Read-only zarr store over a miner's HTTP service; every file is checked before use.

    Only keys in the manifest exist. A chunk key the manifest does not list raises
    ``ForecastInvalid`` instead of reading as a fill value; every file must also fit the
    protocol's layout (``StoreLayout.check``) before zarr gets it. Each event loop that reads
    (the caller's, zarr's I/O thread) uses its own client (``for_running_loop``) and its
    own concurrency bound.
    """

    def __init__(
        self,
        client: SignedClient,
        *,
        base_url: str,
        job_id: str,
        manifest: Manifest,
        committed_hash: str,
        policy: FetchPolicy = FetchPolicy(),
    ) -> None:
        if manifest_hash(manifest) != committed_hash:
            raise ForecastInvalid(
                f"manifest hash {manifest_hash(manifest)} differs from the committed {committed_hash}"
            )
        super().__init__(read_only=True)
        self._client, self._base_url, self._job_id = client, base_url, job_id
        self._manifest, self._committed, self._policy = manifest, committed_hash, policy
        try:
            self._layout = StoreLayout.from_manifest(manifest)
        except LayoutInvalid as error:
            raise ForecastInvalid(str(error)) from error
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, VerifiedHttpStore)
            and (other._base_url, other._job_id, other._committed)
            == (self._base_url, self._job_id, self._committed)
        )

    def __hash__(self) -> int:
        return hash((self._base_url, self._job_id, self._committed))

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop not in self._semaphores:
            self._semaphores[loop] = asyncio.Semaphore(self._policy.max_concurrency)
        return self._semaphores[loop]

    async def _verified(self, key: str) -> bytes:
        entry = self._manifest.files[key]
        url = forecast_url(self._base_url, self._job_id, key)
        async with self._semaphore():
            data = await fetch_bytes(self._client.for_running_loop(), url, self._manifest.miner_hotkey,
                                     max_bytes=entry.size, policy=self._policy)
        if len(data) != entry.size:
            raise ForecastInvalid(f"{key}: {len(data)} bytes, the manifest says {entry.size}")
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise ForecastInvalid(f"{key}: sha256 differs from the manifest")
        try:
            self._layout.check(key, data)
        except LayoutInvalid as error:
            raise ForecastInvalid(str(error)) from error
        return data

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        if key not in self._manifest.files:
            if "/c/" in key:
                raise ForecastInvalid(f"chunk {key} is not listed in the manifest")
            return None
        data = await self._verified(key)
        return prototype.buffer.from_bytes(_apply_range(data, byte_range))

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        return list(await asyncio.gather(
            *(self.get(key, prototype, byte_range) for key, byte_range in key_ranges)
        ))

    async def exists(self, key: str) -> bool:
        return key in self._manifest.files

    @property
    def supports_writes(self) -> bool:
        return False

    @property
    def supports_deletes(self) -> bool:
        return False

    @property
    def supports_listing(self) -> bool:
        return True

    async def set(self, key: str, value: Buffer) -> None:
        raise PermissionError("a verified forecast store is read-only")

    async def delete(self, key: str) -> None:
        raise PermissionError("a verified forecast store is read-only")

    async def list(self) -> AsyncIterator[str]:
        for key in self._manifest.files:
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for key in self._manifest.files:
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        seen: set[str] = set()
        for key in self._manifest.files:
            if key.startswith(prefix):
                child = key[len(prefix):].split("/", 1)[0]
                if child not in seen:
                    seen.add(child)
                    yield child


def _check_dataset(ds: xr.Dataset, manifest: Manifest) -> None:
    """The coordinate values must be the manifest's (the store checked everything else)."""
    grid = manifest.grid.to_grid()
    if ds["lead_hours"].values.tolist() != list(manifest.lead_hours):
        raise ForecastInvalid("zarr lead_hours differ from the manifest's")
    if manifest.levels and ds["level"].values.tolist() != list(manifest.levels):
        raise ForecastInvalid("zarr levels differ from the manifest's")
    for axis, expected in (("latitude", grid.lat), ("longitude", grid.lon)):
        values = np.asarray(ds[axis].values, dtype=np.float64)
        if values.shape != expected.shape or np.max(np.abs(values - expected)) > GRID_TOLERANCE_DEG:
            raise ForecastInvalid(f"zarr {axis} differs from the manifest's grid")


def _open(store: VerifiedHttpStore, manifest: Manifest) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        ds = xr.open_zarr(store, consolidated=True, zarr_format=3, chunks=None)
    _check_dataset(ds, manifest)
    init = np.datetime64(manifest.init_time.removesuffix("Z"), "ns")
    valid = init + np.asarray(manifest.lead_hours, dtype="timedelta64[h]")
    return ds.assign_coords(valid_time=("lead_hours", valid.astype("datetime64[ns]")))


async def open_verified_forecast(
    client: SignedClient,
    base_url: str,
    job_id: str,
    manifest: Manifest,
    committed_hash: str,
    policy: FetchPolicy = FetchPolicy(),
) -> xr.Dataset:
    """A lazy dataset over the miner's store; reading a selection fetches and verifies only
    the chunks it covers. Load it off the event loop: ``await load_lead(ds, 24)``."""
    client.bind_to_running_loop()
    store = VerifiedHttpStore(client, base_url=base_url, job_id=job_id, manifest=manifest,
                              committed_hash=committed_hash, policy=policy)
    return await asyncio.to_thread(_open, store, manifest)


async def load_lead(forecast: xr.Dataset, lead_hours: int) -> xr.Dataset:
    """One lead of a verified forecast, in memory; its variables are fetched concurrently
    (within the store's bound) and off the event loop."""
    if lead_hours not in forecast["lead_hours"].values:
        raise KeyError(f"lead {lead_hours} h is not in the forecast")
    selected = forecast.sel(lead_hours=lead_hours)
    loaded = await asyncio.gather(
        *(asyncio.to_thread(selected[name].load) for name in selected.data_vars)
    )
    return xr.Dataset({str(array.name): array for array in loaded}, attrs=selected.attrs)

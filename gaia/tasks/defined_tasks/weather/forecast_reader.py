"""The validator's verified reads of a miner's forecast store over signed HTTP.

No zarr or xarray on this path: the manifest says which file holds each field, so the reader
fetches exactly the chunks it is asked for and decodes each into one (latitude, longitude)
array. Every byte is checked against the committed manifest (size and sha256) and against
the protocol's layout (``forecast_layout``: exact metadata and codecs, each chunk's declared
decoded size) before it is decoded, and it is decoded into a buffer of exactly its field's
size. A file whose size or sha256 differs, a file the manifest does not list, a file the
miner no longer serves (404), a redirect, a manifest that is not the committed one or not
signed by the miner, metadata, coordinates or a chunk the protocol's writer would not
produce, and a file not delivered in time all raise ``ForecastInvalid`` (the miner is at
fault; never retried). A failed connection and 5xx answers are retried with a short backoff
and then raise ``ForecastTransportError`` (nobody's fault yet; the job queue retries later).

Time: a miner gets ``connect_timeout_s`` to accept the connection (failing that is
transport trouble) and then ``max(transfer_floor_s, size / min_rate_bytes_s)`` to deliver
a file of ``size`` bytes. Too slow is ``Invalid``, not ``Retry``: the miner serves files it
wrote ahead of time, so a slow answer is its doing, and a retried slow-loris would hold the
scoring process for every attempt. When the deadline passes the transfer itself is stopped
(the request's task is cancelled and its connection closed), not only the caller's await.

Memory: a read holds at most ``max_concurrency`` compressed bodies at once, plus the decoded
fields it returns.

Typical use on the validator::

    signed = await fetch_verified_manifest(client, base_url, job_id, miner_hotkey)
    check_manifest_against_run(signed.manifest, init_time=..., run_grid=...)
    # commit signed.manifest_hash ... later, possibly in another process:
    signed = await fetch_verified_manifest(client, base_url, job_id, miner_hotkey, committed)
    forecast = await open_verified_forecast(client, base_url, job_id, signed.manifest, committed)
    day1 = await load_lead(forecast, 24, [("2t", None), ("z", 500)])  # only those two chunks
    lead = await load_lead(forecast, 240)  # every field the manifest declares: LeadFields
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TypeVar
from urllib.parse import quote

import httpx
import numpy as np
from numcodecs import Zstd

from gaia.net.retrying import RetriesExhausted, retried
from gaia.net.signed_http import ResponseTooLarge, ResponseTooSlow, SignedClient
from gaia.tasks.defined_tasks.weather.data.grid import (
    GRID_TOLERANCE_DEG,
    Grid,
    GridMismatch,
    check_forecast_grid,
)
from gaia.tasks.defined_tasks.weather.data.lead_fields import FieldKey, LeadFields
from gaia.tasks.defined_tasks.weather.forecast_codec import CodecInvalid, decode_field
from gaia.tasks.defined_tasks.weather.forecast_layout import ArraySpec, LayoutInvalid, StoreLayout
from gaia.tasks.defined_tasks.weather.forecast_manifest import (
    FileEntry,
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
COORDINATES = ("lead_hours", "latitude", "longitude", "level")
_ZSTD = Zstd()
T = TypeVar("T")


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
    try:
        return await retried(
            lambda: _fetch_once(client, url, receiver, max_bytes, policy),
            tries=policy.attempts,
            delay_s=lambda k: policy.backoff_s[min(k, len(policy.backoff_s) - 1)],
        )
    except RetriesExhausted as exhausted:
        raise ForecastTransportError(
            f"{url}: {exhausted.last} (after {exhausted.tries} attempts)") from exhausted


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
    run_grid: Grid,
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
        check_forecast_grid(manifest.grid.to_grid(), run_grid)
    except GridMismatch as error:
        raise ForecastInvalid(f"forecast grid does not match the run's grid: {error}") from error
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


@dataclass(frozen=True)
class VerifiedForecast:
    """A miner's committed forecast whose root metadata and coordinates have been verified;
    ``load_lead`` reads field chunks from it. Holds no field data."""

    client: SignedClient
    base_url: str
    job_id: str
    manifest: Manifest
    layout: StoreLayout
    grid: Grid
    fields: tuple[FieldKey, ...]
    policy: FetchPolicy

    @property
    def lead_hours(self) -> tuple[int, ...]:
        return self.manifest.lead_hours


def declared_fields(manifest: Manifest) -> tuple[FieldKey, ...]:
    """The (variable, level) fields the manifest declares, in its order (level None: surface)."""
    keys: list[FieldKey] = []
    for name in manifest.variables:
        if is_level_variable(name):
            keys += [(name, level) for level in manifest.levels]
        else:
            keys.append((name, None))
    return tuple(keys)


async def open_verified_forecast(
    client: SignedClient,
    base_url: str,
    job_id: str,
    manifest: Manifest,
    committed_hash: str,
    policy: FetchPolicy = FetchPolicy(),
) -> VerifiedForecast:
    """Check the manifest is the committed one, then fetch and verify the root ``zarr.json``
    (exactly the protocol's layout for the manifest) and the coordinates (exactly the
    manifest's leads, levels and grid). Field chunks are read later by ``load_lead``."""
    if manifest_hash(manifest) != committed_hash:
        raise ForecastInvalid(
            f"manifest hash {manifest_hash(manifest)} differs from the committed {committed_hash}"
        )
    try:
        layout = StoreLayout.from_manifest(manifest)
    except LayoutInvalid as error:
        raise ForecastInvalid(str(error)) from error
    forecast = VerifiedForecast(
        client=client, base_url=base_url, job_id=job_id, manifest=manifest, layout=layout,
        grid=manifest.grid.to_grid(), fields=declared_fields(manifest), policy=policy,
    )
    bound = asyncio.Semaphore(policy.max_concurrency)
    parts = await _all_or_none([
        _read(forecast, "zarr.json", bound, lambda _key, _data: {}),
        *(_read(forecast, f"{name}/c/0", bound, partial(_coordinate_values, name, layout.arrays[name]))
          for name in COORDINATES if name in layout.arrays),
    ])
    _check_coordinates({name: values for part in parts for name, values in part.items()}, forecast)
    return forecast


async def load_lead(
    forecast: VerifiedForecast, lead_hours: int, fields: Iterable[FieldKey] | None = None
) -> LeadFields:
    """The fields of one lead, fetched and verified chunk by chunk (at most
    ``policy.max_concurrency`` at a time, each checked and decoded off the event loop);
    ``fields`` None reads every declared field. Requested fields the manifest does not
    declare are absent from the result (the miner withheld them); a lead it does not
    declare is a ``KeyError``."""
    if lead_hours not in forecast.lead_hours:
        raise KeyError(f"lead {lead_hours} h is not in the forecast")
    lead_index = forecast.lead_hours.index(lead_hours)
    declared = set(forecast.fields)
    wanted = list(forecast.fields) if fields is None else [
        key for key in dict.fromkeys(fields) if key in declared
    ]
    bound = asyncio.Semaphore(forecast.policy.max_concurrency)
    arrays = await _all_or_none([
        _read(forecast, _field_chunk_key(forecast.manifest, key, lead_index), bound,
              partial(decode_field, variable=key[0], shape=forecast.grid.shape))
        for key in wanted
    ])
    return LeadFields(forecast.grid, dict(zip(wanted, arrays, strict=True)))


def _field_chunk_key(manifest: Manifest, key: FieldKey, lead_index: int) -> str:
    variable, level = key
    return chunk_key(variable, lead_index, None if level is None else manifest.levels.index(level))


async def _read(
    forecast: VerifiedForecast, key: str, bound: asyncio.Semaphore,
    decode: Callable[[str, bytes], T],
) -> T:
    """Fetch one listed file, verify it and decode it. The bound covers all three, so at
    most ``bound`` compressed bodies are alive at once."""
    entry = forecast.manifest.files.get(key)
    if entry is None:
        raise ForecastInvalid(f"{key} is not listed in the manifest")
    url = forecast_url(forecast.base_url, forecast.job_id, key)
    async with bound:
        data = await fetch_bytes(forecast.client, url, forecast.manifest.miner_hotkey,
                                 max_bytes=entry.size, policy=forecast.policy)
        return await asyncio.to_thread(_verified, forecast.layout, key, entry, data, decode)


def _verified(
    layout: StoreLayout, key: str, entry: FileEntry, data: bytes,
    decode: Callable[[str, bytes], T],
) -> T:
    """``decode(key, data)`` once ``data`` is the manifest's file and fits the layout."""
    if len(data) != entry.size:
        raise ForecastInvalid(f"{key}: {len(data)} bytes, the manifest says {entry.size}")
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise ForecastInvalid(f"{key}: sha256 differs from the manifest")
    try:
        layout.check(key, data)
        return decode(key, data)
    except (LayoutInvalid, CodecInvalid) as error:
        raise ForecastInvalid(str(error)) from error


def _coordinate_values(name: str, spec: ArraySpec, key: str, data: bytes) -> dict[str, np.ndarray]:
    """``{name: values}``, the chunk decoded into exactly its array's size (little-endian,
    as written)."""
    values = np.empty(spec.shape, dtype=spec.dtype.newbyteorder("<"))
    try:
        _ZSTD.decode(data, out=values)
    except (RuntimeError, ValueError) as error:
        raise ForecastInvalid(f"{key} does not decode: {error}") from error
    return {name: values}


def _check_coordinates(values: dict[str, np.ndarray], forecast: VerifiedForecast) -> None:
    """The store's coordinates must be the manifest's (the layout fixed everything else)."""
    manifest, grid = forecast.manifest, forecast.grid
    if values["lead_hours"].tolist() != list(manifest.lead_hours):
        raise ForecastInvalid("the store's lead_hours differ from the manifest's")
    if "level" in values and values["level"].tolist() != list(manifest.levels):
        raise ForecastInvalid("the store's levels differ from the manifest's")
    for axis, expected in (("latitude", grid.lat), ("longitude", grid.lon)):
        if not np.all(np.abs(values[axis] - expected) <= GRID_TOLERANCE_DEG):  # NaN fails too
            raise ForecastInvalid(f"the store's {axis} differs from the manifest's grid")


async def _all_or_none(reads: Sequence[Awaitable[T]]) -> list[T]:
    """Every read's result in order, or the first failure with the other reads cancelled
    (a failed forecast must not keep fetching behind the caller's back)."""
    tasks = [asyncio.ensure_future(read) for read in reads]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise

"""GFS 0.25 degree pgrb2 source: analyses and forecasts by ``.idx`` byte ranges over httpx.

Files follow NOAA's layout ``gfs.YYYYMMDD/HH/atmos/gfs.tHHz.pgrb2.0p25.fFFF`` with a
wgrib2 ``.idx`` beside each. Only the needed messages are downloaded (adjacent ranges
merged, ``max_concurrency`` requests at a time, 5xx/timeouts/short bodies retried with
backoff), each message is checked and decoded, and kept in an on-disk cache keyed by
(cycle, lead, field) that is never fetched again. The analysis at T is the f000 file
of cycle T. Datetimes are timezone-aware UTC.

Operator commands (check access to GFS by hand)::

    python -m gaia.tasks.defined_tasks.weather.data.gfs fetch --base-url URL \
        --cycle 2025080100 --lead 0 --lead 6 --out out.nc
    python -m gaia.tasks.defined_tasks.weather.data.gfs inventory --base-url URL \
        --cycle 2025080100 --lead 0
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

import httpx
import xarray as xr

from gaia.clock import Now, system_clock
from gaia.config import NOAA_GFS_BUCKET, DataSettings
from gaia.net.retrying import RetriesExhausted, RetryAnswer, request_with_retries
from gaia.tasks.defined_tasks.weather.data import gfs_cache
from gaia.tasks.defined_tasks.weather.data.canonical import FieldAssembler
from gaia.tasks.defined_tasks.weather.data.gfs_idx import (
    ByteRange,
    FieldKey,
    GfsMessageMissing,
    IdxEntry,
    grib_code,
    merge_ranges,
    needed_fields,
    parse_inventory,
    select_codes,
    select_messages,
)
from gaia.tasks.defined_tasks.weather.data.gfs_statics import (
    STATIC_CODES,
    cache_key,
    decode_statics,
)
from gaia.tasks.defined_tasks.weather.data.grib import DecodedField, GfsDecodeError, decode_message
from gaia.tasks.defined_tasks.weather.variables import DAY1_LEAD_HOURS, LEAD_STEP_HOURS

__all__ = [
    "GfsDecodeError", "GfsMessageMissing", "GfsSource",
    "GfsTransportError", "GfsUnavailable", "gfs_file_path",
]

log = logging.getLogger(__name__)

# a cycle is complete for the validator once every file from f000 to its last day-1 lead is out
REFERENCE_LEAD_HOURS: tuple[int, ...] = tuple(range(0, max(DAY1_LEAD_HOURS) + 1, LEAD_STEP_HOURS))


class GfsUnavailable(RuntimeError):
    """The file is not published (HTTP 404): the cycle is not (yet) available."""


class GfsTransportError(RuntimeError):
    """HTTP failed after all retries (5xx, timeouts, short bodies) or cannot be retried."""


def gfs_file_path(cycle: datetime, lead_hours: int) -> str:
    """The NOAA layout path of one GRIB2 file, relative to the base URL."""
    hh = f"{cycle:%H}"
    return f"gfs.{cycle:%Y%m%d}/{hh}/atmos/gfs.t{hh}z.pgrb2.0p25.f{lead_hours:03d}"


def _check_utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() != timedelta(0):
        raise ValueError(f"datetime {when!r} must be timezone-aware UTC")
    if when.minute or when.second or when.microsecond or when.hour % 6:
        raise ValueError(f"{when.isoformat()} is not a 6-hourly GFS cycle")
    return when.astimezone(UTC)


class MessageCache:
    """On-disk cache of single GRIB2 messages, keyed by (cycle, lead, field); bounded by
    :func:`gfs_cache.prune`, which leaves a cycle alone while someone is :meth:`using` it."""

    def __init__(self, root: Path, clock: Now = system_clock):
        self._root = Path(root)
        self._clock = clock

    def using(self, cycle: datetime) -> ExitStack:
        """Hold ``cycle``'s messages against pruning; records the use on the clock."""
        return gfs_cache.using(self._root, cycle, self._clock)

    def path(self, cycle: datetime, lead: int, key: FieldKey) -> Path:
        name, level = key
        return self._root / f"{cycle:%Y%m%d%H}" / f"f{lead:03d}" / f"{name}_{level or 'sfc'}.grib2"

    def get(self, cycle: datetime, lead: int, key: FieldKey) -> bytes | None:
        path = self.path(cycle, lead, key)
        return path.read_bytes() if path.exists() else None

    def put(self, cycle: datetime, lead: int, key: FieldKey, data: bytes) -> None:
        """Write atomically: a reader never sees a partial message."""
        path = self.path(cycle, lead, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(tmp, path)


class _Progress:
    """Progress on stderr, only when it is a terminal."""

    def __init__(self, label: str, total: int):
        self._label, self._total, self._done, self._bytes = label, total, 0, 0
        self._enabled = sys.stderr.isatty()

    def advance(self, nbytes: int) -> None:
        self._done += 1
        self._bytes += nbytes
        if self._enabled:
            sys.stderr.write(
                f"\r{self._label}: {self._done}/{self._total} ranges, {self._bytes / 1e6:.1f} MB"
            )
            if self._done >= self._total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _contains(rng: ByteRange, entry: IdxEntry) -> bool:
    return rng.start <= entry.offset and (rng.end is None or entry.offset < rng.end)


def _members(rng: ByteRange, picked: dict[FieldKey, IdxEntry]) -> dict[FieldKey, IdxEntry]:
    return {key: entry for key, entry in picked.items() if _contains(rng, entry)}


def _slice(body: bytes, rng: ByteRange, entry: IdxEntry) -> bytes:
    """One message's bytes out of a merged range's body."""
    start = entry.offset - rng.start
    return body[start:] if entry.end is None else body[start:entry.end - rng.start]


class GfsSource:
    """Async GFS source; use as ``async with GfsSource(...) as gfs``."""

    def __init__(
        self,
        base_url: str,
        cache_dir: Path,
        *,
        fallback_base_url: str | None = None,
        max_concurrency: int = 8,
        timeout_s: float = 30.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        client: httpx.AsyncClient | None = None,
        clock: Now = system_clock,
    ):
        self._bases = [base_url.rstrip("/")]
        if fallback_base_url:
            self._bases.append(fallback_base_url.rstrip("/"))
        self._cache = MessageCache(Path(cache_dir), clock)
        self._inventories: dict[str, tuple[list[IdxEntry], str]] = {}  # published files never change
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._decode_slots = asyncio.Semaphore(os.cpu_count() or 2)  # decoding is CPU-bound
        self._retries = max_retries
        self._backoff = backoff_s
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeout_s, limits=httpx.Limits(max_connections=max_concurrency)
        )

    @classmethod
    def from_settings(cls, data: DataSettings, *, clock: Now = system_clock) -> GfsSource:
        """The source an operator configured: ``data``'s base and fallback URLs, cache
        directory, download concurrency and timeout (the validator, its scoring processes
        and the miner all open it so)."""
        return cls(
            data.gfs_base_url, data.cache_dir.expanduser(),
            fallback_base_url=data.gfs_fallback_url, max_concurrency=data.download_concurrency,
            timeout_s=data.http_timeout_s, clock=clock,
        )

    async def __aenter__(self) -> GfsSource:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    # -- public API ---------------------------------------------------------------------
    async def fetch_analysis(
        self, times: Sequence[datetime], *, variables: Sequence[str] | None = None,
        levels: Sequence[int] | None = None,
    ) -> xr.Dataset:
        """Canonical analysis (f000 of each cycle) at ``times``; time dim = those times."""
        cycles = [_check_utc(t) for t in times]
        keys = needed_fields(variables, levels)
        assembler = FieldAssembler(keys, cycles)
        await asyncio.gather(*(self._fetch_file(c, 0, keys, assembler) for c in cycles))
        return assembler.dataset().assign_attrs(source="gfs", product="analysis (f000)")

    async def fetch_inputs(self, init_time: datetime) -> xr.Dataset:
        """The miner's inputs: analyses at [T0 - 6 h, T0]."""
        init = _check_utc(init_time)
        return await self.fetch_analysis([init - timedelta(hours=6), init])

    async def fetch_statics(self, cycle: datetime) -> xr.Dataset:
        """The static fields of the f000 file of ``cycle``: ``lsm``, ``z``, ``slt``.

        float32 (latitude, longitude) on the coordinates ``fetch_inputs`` gives for that
        cycle; units and the soil-type mapping in ``gfs_statics``. Messages are cached like
        the others; a missing one raises ``GfsMessageMissing`` naming it.
        """
        cycle = _check_utc(cycle)
        with await asyncio.to_thread(self._cache.using, cycle):
            return await self._fetch_statics(cycle)

    async def _fetch_statics(self, cycle: datetime) -> xr.Dataset:
        cached = {name: self._cache.get(cycle, 0, cache_key(name)) for name in STATIC_CODES}
        messages = {name: data for name, data in cached.items() if data is not None}
        missing = {name: code for name, code in STATIC_CODES.items() if name not in messages}
        if missing:
            entries, url = await self._inventory(cycle, 0)
            picked = select_codes(entries, missing, 0, source=url + ".idx")
            bodies = await self.fetch_messages(url, list(picked.values()))
            messages.update(zip(picked, bodies, strict=True))
        async with self._decode_slots:
            ds = await asyncio.to_thread(decode_statics, messages, gfs_file_path(cycle, 0))
        for name in missing:
            self._cache.put(cycle, 0, cache_key(name), messages[name])
        return ds.assign_attrs(source="gfs", product="statics (f000)", cycle=cycle.isoformat())

    async def fetch_forecast(
        self, init_time: datetime, lead_hours: Sequence[int], *,
        variables: Sequence[str] | None = None, levels: Sequence[int] | None = None,
    ) -> xr.Dataset:
        """Forecast from one init; time dim = valid times, with a ``lead_hours`` coord."""
        init = _check_utc(init_time)
        keys = needed_fields(variables, levels)
        leads = [int(h) for h in lead_hours]
        assembler = FieldAssembler(keys, [init + timedelta(hours=h) for h in leads])
        await asyncio.gather(*(self._fetch_file(init, h, keys, assembler) for h in leads))
        ds = assembler.dataset().assign_coords(lead_hours=("time", leads))
        return ds.assign_attrs(source="gfs", init_time=init.isoformat())

    async def is_cycle_complete(
        self, cycle: datetime, lead_hours: Sequence[int] = REFERENCE_LEAD_HOURS
    ) -> bool:
        """True when the GRIB2 file and .idx of every lead are published (HEAD 200).

        The default leads are the validator's day-1 reference (f000..f024); a miner that
        only needs the analysis passes ``lead_hours=(0,)``.
        """
        cycle = _check_utc(cycle)
        paths = [gfs_file_path(cycle, h) + ext for h in lead_hours for ext in ("", ".idx")]
        for base in self._bases:
            try:
                await asyncio.gather(*(self._request("HEAD", f"{base}/{p}") for p in paths))
            except GfsUnavailable:
                continue
            return True
        return False

    async def inventory(self, cycle: datetime, lead_hours: int) -> list[IdxEntry]:
        """The parsed inventory of one file (from the first base URL that has it)."""
        entries, _ = await self._inventory(_check_utc(cycle), lead_hours)
        return entries

    # -- internals ----------------------------------------------------------------------
    async def _inventory(self, cycle: datetime, lead: int) -> tuple[list[IdxEntry], str]:
        path = gfs_file_path(cycle, lead)
        if path not in self._inventories:
            self._inventories[path] = await self._read_inventory(path)
        return self._inventories[path]

    async def _read_inventory(self, path: str) -> tuple[list[IdxEntry], str]:
        """The inventory from the first base URL that serves it (then the fallback)."""
        errors: list[GfsUnavailable | GfsTransportError] = []
        for base in self._bases:
            url = f"{base}/{path}"
            try:
                response = await self._request("GET", url + ".idx")
            except (GfsUnavailable, GfsTransportError) as exc:
                errors.append(exc)
                continue
            return parse_inventory(response.text), url
        reasons = "; ".join(str(e) for e in errors)
        if all(isinstance(e, GfsUnavailable) for e in errors):
            raise GfsUnavailable(f"{path} is not published: {reasons}")
        raise GfsTransportError(f"{path}: no base URL answered: {reasons}")

    async def _fetch_file(
        self, cycle: datetime, lead: int, keys: list[FieldKey], assembler: FieldAssembler
    ) -> None:
        with await asyncio.to_thread(self._cache.using, cycle):
            await self._fetch_cached(cycle, lead, keys, assembler)

    async def _fetch_cached(
        self, cycle: datetime, lead: int, keys: list[FieldKey], assembler: FieldAssembler
    ) -> None:
        """Decode every field of one file into ``assembler``: cached messages from disk,
        the others by byte ranges, each range decoded as soon as it arrives."""
        label = gfs_file_path(cycle, lead)

        def decode(key: FieldKey, data: bytes | None) -> DecodedField:
            data = self._cache.get(cycle, lead, key) if data is None else data
            if data is None:
                raise GfsDecodeError(f"{label}: cache entry for {key} vanished")
            return decode_message(data, key, f"{label} {key}")

        async def add(key: FieldKey, data: bytes | None = None) -> None:
            async with self._decode_slots:
                assembler.add(await asyncio.to_thread(decode, key, data))
            if data is not None:
                self._cache.put(cycle, lead, key, data)

        async def fetch_range(url: str, rng: ByteRange, members: dict[FieldKey, IdxEntry],
                              progress: _Progress) -> None:
            body = await self._get_range(url, rng, progress)
            await asyncio.gather(*(add(k, _slice(body, rng, e)) for k, e in members.items()))

        missing = [k for k in keys if not self._cache.path(cycle, lead, k).exists()]
        tasks = [add(k) for k in keys if k not in missing]
        if missing:
            entries, url = await self._inventory(cycle, lead)
            picked = select_messages(entries, missing, lead, source=url + ".idx")
            ranges = merge_ranges(picked.values())
            progress = _Progress(url.rsplit("/", 1)[-1], len(ranges))
            tasks += [fetch_range(url, r, _members(r, picked), progress) for r in ranges]
        await asyncio.gather(*tasks)

    async def fetch_messages(self, url: str, entries: Sequence[IdxEntry]) -> list[bytes]:
        """The bytes of each inventory entry's message in ``url`` (merged range requests).

        Sub-messages (``N.M``) return their whole shared message.
        """
        ranges = merge_ranges(entries)
        progress = _Progress(url.rsplit("/", 1)[-1], len(ranges))
        bodies = await asyncio.gather(*(self._get_range(url, r, progress) for r in ranges))
        return [next(_slice(b, r, e) for r, b in zip(ranges, bodies, strict=True)
                     if _contains(r, e)) for e in entries]

    async def _get_range(self, url: str, rng: ByteRange, progress: _Progress) -> bytes:
        def truncated(response: httpx.Response) -> str | None:
            if response.status_code != 206 or rng.length in (None, len(response.content)):
                return None
            log.warning("%s %s: short body %d of %d bytes", url, rng.header,
                        len(response.content), rng.length)
            return "truncated body"

        headers = {"Range": rng.header}
        response = await self._request("GET", url, headers, retry_answer=truncated)
        if response.status_code != 206:
            raise GfsTransportError(
                f"{url}: server ignored Range {rng.header} (HTTP {response.status_code})"
            )
        progress.advance(len(response.content))
        return response.content

    async def _request(
        self, method: str, url: str, headers: dict[str, str] | None = None, *,
        retry_answer: RetryAnswer | None = None,
    ) -> httpx.Response:
        """One request with retries of 5xx, timeouts, connection errors and the answers
        ``retry_answer`` rejects."""
        try:
            response = await request_with_retries(
                self._client, method, url, headers=headers, retries=self._retries,
                backoff_s=self._backoff, limiter=self._semaphore,
                retry_answer=retry_answer,
            )
        except RetriesExhausted as exc:
            raise GfsTransportError(f"{method} {url} failed: {exc}") from exc
        if response.status_code == 404:
            raise GfsUnavailable(f"{url}: HTTP 404")
        if response.status_code >= 400:
            raise GfsTransportError(f"{method} {url} failed: HTTP {response.status_code}")
        return response


def _parse_cycle(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d%H").replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gaia.tasks.defined_tasks.weather.data.gfs")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("fetch", "inventory"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--base-url", default=NOAA_GFS_BUCKET)
        cmd.add_argument("--fallback-base-url", default=None)
        cmd.add_argument("--cycle", required=True, type=_parse_cycle, help="YYYYMMDDHH")
        cmd.add_argument("--lead", type=int, action="append", required=True, help="hours")
    fetch = sub.choices["fetch"]
    fetch.add_argument("--variables", nargs="+", default=None)
    fetch.add_argument("--levels", nargs="+", type=int, default=None)
    fetch.add_argument("--cache-dir", type=Path, default=None)
    fetch.add_argument("--out", type=Path, required=True, help="NetCDF file to write")
    return parser


async def _run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        cache = args.cache_dir if getattr(args, "cache_dir", None) else Path(scratch)
        async with GfsSource(args.base_url, cache, fallback_base_url=args.fallback_base_url) as gfs:
            if args.command == "inventory":
                for lead in args.lead:
                    entries = await gfs.inventory(args.cycle, lead)
                    wanted = {(c.var, c.level) for c in map(grib_code, needed_fields())}
                    for e in entries:
                        size = "open" if e.end is None else str(e.end - e.offset)
                        mark = "*" if (e.var, e.level) in wanted else " "
                        print(f"{mark} f{lead:03d} {e.number:>6} {e.offset:>11} {size:>9} "
                              f"{e.var}:{e.level}:{e.ftime}")
                return
            ds = await gfs.fetch_forecast(args.cycle, args.lead, variables=args.variables,
                                          levels=args.levels)
            ds.to_netcdf(args.out)
            print(f"wrote {args.out}: {dict(ds.sizes)} variables {list(ds.data_vars)}")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        asyncio.run(_run(args))
    except (GfsUnavailable, GfsTransportError, GfsMessageMissing, GfsDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The scoring references of a validator host, fetched once and shared by every task.

Every miner's scoring task needs the same ERA5 truth, climatology and GFS day-1 reference;
fetched per miner and per lead they are terabytes of reference chunks a day. This cache
keeps them on the host's disk in a canonical layout, one float32 ``(latitude, longitude)``
``.npy`` file per field, read back with ``np.load(mmap_mode="r")`` so the scoring processes
share the page cache instead of holding copies::

    {root}/truth-{store digest}/grid.npz, {YYYYmmddTHHMM}/{variable}[_{level}].npy
    {root}/climatology-{store digest}/grid.npz, h{HH}-d{DDD}/{variable}[_{level}].npy
    {root}/gfs/grid.npz, {init YYYYmmddTHHMM}/f{lead:03d}.{variable}[_{level}].npy

An entry is one of those directories (a valid time, an (hour, day of year), a GFS init);
its ``.used`` file's mtime is its last use by the injected clock. The store digest keeps a
changed ERA5 or climatology URL from serving another store's values.

What is fetched at once is the source's chunk (ARCO: one variable at one time, all levels;
WeatherBench-2: one field's 3 hours x 3 days, stored whole since later leads and the next
days' runs use the rest; GFS: one run's day-1 set). Each chunk is filled under an exclusive
``flock`` of its own lock file, so the processes and threads of a host that ask for it at
once fetch it once: whoever gets the lock second finds the files. Files are written under a
``.partial`` name and renamed, so a filler that dies leaves nothing that reads as complete.
Users of an entry hold a shared lock on it; :meth:`ReferenceCache.prune` evicts only
entries it can lock exclusively without waiting, so never one being filled or read.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from gaia.clock import Now, system_clock
from gaia.tasks.defined_tasks.weather.data.climatology import ClimatologySource, climatology_key
from gaia.tasks.defined_tasks.weather.data.era5 import LEXICON, Era5Source
from gaia.tasks.defined_tasks.weather.data.file_locks import held, lock_fd
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource
from gaia.tasks.defined_tasks.weather.data.grid import Grid, GridMismatch
from gaia.tasks.defined_tasks.weather.data.lead_fields import FieldKey, LeadFields
from gaia.tasks.defined_tasks.weather.data.zarr_fields import SourceChunk, by_variable, chunk_nbytes

# Chunks one call fills at once: as many as fit in FILL_BUDGET_BYTES of decoded chunk, at
# most FILL_THREADS. Reading a chunk over HTTP peaks near 2.5 x its decoded size (the body
# as httpx joins it, the decoded chunk, the wanted levels), so an ARCO chunk (all 37 levels
# of a 0.25 deg field, 154 MB) is read alone and WeatherBench-2 chunks (3 x 3 fields, 37 MB)
# four at a time: a scoring process that fills the cache stays near 1 GB. The chunks are
# large enough that transfers are bandwidth-bound, not latency-bound.
FILL_THREADS = 4
FILL_BUDGET_BYTES = 300 * 10**6
USED = ".used"
PARTIAL = ".partial"
LOCKS = ".locks"


@dataclass(frozen=True)
class PruneReport:
    """What one :meth:`ReferenceCache.prune` did; entries are ``space/entry`` names."""

    idle: tuple[str, ...]
    over_bound: tuple[str, ...]
    busy: tuple[str, ...]
    kept_bytes: int


@dataclass(frozen=True)
class _Entry:
    space: str
    name: str
    path: Path
    last_used: float
    nbytes: int

    @property
    def label(self) -> str:
        return f"{self.space}/{self.name}"




def _write_array(path: Path, array: np.ndarray) -> None:
    """``array`` as float32 ``.npy`` at ``path``, visible only once complete."""
    partial = path.with_name(path.name + PARTIAL)
    with partial.open("wb") as out:
        np.save(out, np.ascontiguousarray(array, dtype=np.float32))
    os.replace(partial, path)


def _field_file(key: FieldKey, prefix: str = "") -> str:
    variable, level = key
    return f"{prefix}{variable}.npy" if level is None else f"{prefix}{variable}_{level}.npy"


def _time_name(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"reference times must be timezone-aware, got naive {moment}")
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M}"


def _entry_time_name(entry: Hashable) -> str:
    """The file name of an ERA5 chunk entry (a valid time)."""
    if not isinstance(entry, datetime):
        raise TypeError(f"ERA5 chunk entries are valid times, got {entry!r}")
    return _time_name(entry)


def _climatology_name(key: Hashable) -> str:
    if not (isinstance(key, tuple) and len(key) == 2):
        raise TypeError(f"climatology entries are (hour, day of year) pairs, got {key!r}")
    hour, day = key
    return f"h{hour:02d}-d{day:03d}"


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:12]


class _Space:
    """One kind of reference from one source: its entries, grid and lock files."""

    def __init__(self, root: Path, name: str, clock: Now):
        self.name = name
        self.path = root / name
        self._locks = root / LOCKS / name
        self._clock = clock
        self._grid: Grid | None = None

    # -- locks --------------------------------------------------------------------------
    def using(self, entry: str) -> ExitStack:
        """Hold ``entry`` against eviction (shared lock) and make sure it exists."""
        stack = ExitStack()
        stack.enter_context(held(self._locks / f"{entry}.entry", fcntl.LOCK_SH))
        self._ensure(entry)
        return stack

    def filling(self, unit: str) -> ExitStack:
        stack = ExitStack()
        stack.enter_context(held(self._locks / f"{unit}.unit", fcntl.LOCK_EX))
        return stack

    # -- files --------------------------------------------------------------------------
    def has(self, entry: str, key: FieldKey, prefix: str = "") -> bool:
        return (self.path / entry / _field_file(key, prefix)).is_file()

    def store(self, entry: str, fields: LeadFields, prefix: str = "") -> None:
        self._save_grid(fields.grid)
        for key, array in fields.items():
            _write_array(self.path / entry / _field_file(key, prefix), array)

    def load(self, entry: str, keys: Sequence[FieldKey], prefix: str = "") -> LeadFields:
        values: dict[FieldKey, np.ndarray] = {}
        for key in keys:
            path = self.path / entry / _field_file(key, prefix)
            if not path.is_file():
                raise KeyError(f"the reference store has no field {key} for {self.name}/{entry}")
            values[key] = np.load(path, mmap_mode="r")
        return LeadFields(self.grid(), values)

    def touch(self, entry: str) -> None:
        """Record a use of ``entry`` at the clock's time (what eviction orders by)."""
        moment = self._clock().timestamp()
        os.utime(self.path / entry / USED, (moment, moment))

    def grid(self) -> Grid:
        if self._grid is None:
            with np.load(self.path / "grid.npz") as saved:
                self._grid = Grid(latitudes=saved["lat"], longitudes=saved["lon"])
        return self._grid

    def _ensure(self, entry: str) -> None:
        folder = self.path / entry
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / USED).exists():
            (folder / USED).touch()
            self.touch(entry)

    def _save_grid(self, grid: Grid) -> None:
        path = self.path / "grid.npz"
        if path.exists():
            if self.grid() != grid:
                raise GridMismatch(f"{self.name}: the source's grid changed under the cache")
            return
        # fillers of different chunks may race here: each writes its own partial file
        partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}{PARTIAL}")
        with partial.open("wb") as out:
            np.savez(out, lat=grid.lat, lon=grid.lon)
        os.replace(partial, path)

    # -- eviction -----------------------------------------------------------------------
    def entries(self) -> list[_Entry]:
        if not self.path.is_dir():
            return []
        out = []
        for folder in self.path.iterdir():
            if folder.is_dir() and not folder.name.startswith("."):
                try:
                    out.append(self._entry(folder))
                except FileNotFoundError:  # evicted by another process meanwhile
                    continue
        return out

    def _entry(self, folder: Path) -> _Entry:
        files = list(folder.iterdir())
        marker = folder / USED
        last = (marker if marker.exists() else folder).stat().st_mtime
        size = sum(f.stat().st_size for f in files if f.is_file())
        return _Entry(self.name, folder.name, folder, last, size)

    def evict(self, entry: _Entry) -> bool:
        """Remove ``entry`` unless someone uses it (False then)."""
        lock = self._locks / f"{entry.name}.entry"
        fd = lock_fd(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if fd is None:
            return False
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            for unit in self._locks.glob(f"{entry.name}.*.unit"):
                self._unlink_free(unit)
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)
        return True

    @staticmethod
    def _unlink_free(path: Path) -> None:
        fd = lock_fd(path, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if fd is not None:
            try:
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)


class ReferenceCache:
    """Host-local disk cache of ERA5 truth, climatology and the GFS day-1 reference.

    ``max_bytes`` bounds the disk it keeps after a prune; ``idle_s`` (of ``clock``) is how
    long an entry nobody reads stays. Safe to use from many threads and processes at once
    over the same ``root``."""

    def __init__(
        self, root: Path, *, era5: Era5Source, climatology: ClimatologySource, max_bytes: int,
        idle_s: float, clock: Now = system_clock,
    ) -> None:
        if max_bytes <= 0 or idle_s <= 0:
            raise ValueError(f"max_bytes and idle_s must be positive, got {max_bytes}, {idle_s}")
        self.root = Path(root)
        self._era5, self._climatology = era5, climatology
        self.max_bytes, self.idle_s = max_bytes, idle_s
        self._clock = clock
        self._truth = _Space(self.root, f"truth-{_digest(era5.url)}", clock)
        self._normals = _Space(self.root, f"climatology-{_digest(climatology.url)}", clock)
        self._gfs = _Space(self.root, "gfs", clock)  # NOAA's mirrors serve identical files

    def truth(self, valid_time: datetime, keys: Sequence[FieldKey]) -> LeadFields:
        """ERA5 ``keys`` at ``valid_time``; fetches the missing chunks once per host.

        ``Era5NotAvailable`` and ``ZarrHttpError`` come from the store unchanged."""
        keys = tuple(keys)
        by_variable(keys, LEXICON)
        return self._lead(
            self._truth, _time_name(valid_time), keys, _entry_time_name, self._era5.read_chunk,
            lambda missing: self._era5.chunks(valid_time, missing), lambda: self._era5.group,
        )

    def climatology(self, valid_time: datetime, keys: Sequence[FieldKey]) -> LeadFields:
        """Climatology ``keys`` at ``valid_time``'s (hour, day of year), fetched once per host
        (with the rest of each chunk: the (hour, day of year) values next to it)."""
        keys = tuple(keys)
        by_variable(keys, LEXICON)
        return self._lead(
            self._normals, _climatology_name(climatology_key(valid_time)), keys,
            _climatology_name, self._climatology.read_chunk,
            lambda missing: self._climatology.chunks(valid_time, missing),
            lambda: self._climatology.group,
        )

    async def gfs_forecast(
        self, gfs: GfsSource, init_time: datetime, leads: Sequence[int], keys: Sequence[FieldKey],
    ) -> dict[int, LeadFields]:
        """The GFS forecast from ``init_time`` at ``leads`` (the day-1 reference), decoded
        once per host; ``GfsUnavailable`` / ``GfsTransportError`` come through unchanged."""
        keys, leads = tuple(keys), tuple(int(lead) for lead in leads)
        by_variable(keys, LEXICON)
        entry = _time_name(init_time)
        space = self._gfs
        prefixes = {lead: f"f{lead:03d}." for lead in leads}
        held = await asyncio.to_thread(space.using, entry)
        with held:
            complete = all(space.has(entry, k, p) for p in prefixes.values() for k in keys)
            if not complete:
                with await asyncio.to_thread(space.filling, f"{entry}.day1"):
                    if not all(space.has(entry, k, p) for p in prefixes.values() for k in keys):
                        forecast = await gfs.fetch_forecast(
                            init_time, leads, variables=sorted({v for v, _ in keys}),
                            levels=sorted({lev for _, lev in keys if lev is not None}),
                        )
                        await asyncio.to_thread(_store_forecast, space, entry, forecast, keys)
            out = {lead: space.load(entry, keys, prefixes[lead]) for lead in leads}
            space.touch(entry)
        if not complete:
            await asyncio.to_thread(self.prune)
        return out

    def prune(self) -> PruneReport:
        """Evict entries idle longer than ``idle_s``, then the least recently used until the
        cache holds at most ``max_bytes``; entries in use are skipped (and kept)."""
        now = self._clock().timestamp()
        entries = [e for space in (self._truth, self._normals, self._gfs) for e in space.entries()]
        spaces = {s.name: s for s in (self._truth, self._normals, self._gfs)}
        idle: list[_Entry] = []
        over: list[_Entry] = []
        busy: list[_Entry] = []
        kept: list[_Entry] = []
        for entry in sorted(entries, key=lambda e: e.last_used):
            if now - entry.last_used > self.idle_s:
                if spaces[entry.space].evict(entry):
                    idle.append(entry)
                    continue
                busy.append(entry)
            kept.append(entry)
        total = sum(e.nbytes for e in kept)
        for entry in list(kept):  # least recently used first
            if total <= self.max_bytes:
                break
            if spaces[entry.space].evict(entry):
                over.append(entry)
                total -= entry.nbytes
            elif entry not in busy:
                busy.append(entry)
        return PruneReport(tuple(e.label for e in idle), tuple(e.label for e in over),
                           tuple(e.label for e in busy), total)

    def _lead(
        self, space: _Space, entry: str, keys: tuple[FieldKey, ...],
        name_of: Callable[[Hashable], str], read: Callable[[SourceChunk], dict[Hashable, LeadFields]],
        chunks_for: Callable[[list[FieldKey]], list[SourceChunk]],
        group: Callable[[], zarr.Group],
    ) -> LeadFields:
        with space.using(entry):
            missing = [key for key in keys if not space.has(entry, key)]
            if missing:
                chunks = chunks_for(missing)
                with ThreadPoolExecutor(_fill_threads(group(), chunks)) as pool:
                    list(pool.map(lambda c: _fill_chunk(space, c, name_of, read), chunks))
            fields = space.load(entry, keys)
            space.touch(entry)
        if missing:
            self.prune()
        return fields


def _fill_threads(group: zarr.Group, chunks: Sequence[SourceChunk]) -> int:
    """How many of ``chunks`` to read at once (FILL_BUDGET_BYTES of decoded chunk)."""
    largest = max((chunk_nbytes(group, chunk) for chunk in chunks), default=1)
    return max(1, min(FILL_THREADS, len(chunks), FILL_BUDGET_BYTES // largest))


def _fill_chunk(
    space: _Space, chunk: SourceChunk, name_of: Callable[[Hashable], str],
    read: Callable[[SourceChunk], dict[Hashable, LeadFields]],
) -> None:
    """Fetch ``chunk`` into every entry it holds, unless another filler just did."""
    names = [name_of(entry) for entry in chunk.entries]
    with space.filling(chunk.name), ExitStack() as held:
        for name in names:
            held.enter_context(space.using(name))
        if all(space.has(name, key) for name in names for key in chunk.fields):
            return
        for entry, fields in read(chunk).items():
            space.store(name_of(entry), fields)


def _store_forecast(space: _Space, entry: str, forecast: xr.Dataset,
                    keys: tuple[FieldKey, ...]) -> None:
    for index, lead in enumerate(int(h) for h in forecast["lead_hours"].values):
        fields = LeadFields.from_dataset(forecast.isel(time=index), keys)
        absent = [key for key in keys if key not in fields]
        if absent:
            raise KeyError(f"GFS {entry} f{lead:03d} lacks fields {absent}")
        space.store(entry, fields, f"f{lead:03d}.")


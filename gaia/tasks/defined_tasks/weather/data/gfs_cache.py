"""The GFS message cache's layout, its readers' locks and its bound (validator and miner).

Layout under the cache root (``data.cache_dir``)::

    {root}/{cycle YYYYmmddHH}/.used, f{lead:03d}/{variable}_{level|sfc}.grib2
    {root}/.locks/{cycle YYYYmmddHH}.lock

An entry is one cycle's directory; nothing else under the root (the validator's reference
cache lives in ``references/``) is an entry, so a prune never touches it. A user of a cycle
holds a shared ``flock`` on its lock file while it reads and writes the cycle's messages, and
records the use on the injected clock (the ``.used`` file's mtime). :func:`prune` removes
the cycles idle longer than the bound's age, then the least recently used until the cache
holds at most the bound's bytes; it takes each lock exclusively without waiting, so a cycle
being read or filled is skipped (and kept) rather than pulled from under its reader.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gaia.clock import Now
from gaia.config import DataSettings
from gaia.tasks.defined_tasks.weather.data.file_locks import held, lock_fd

log = logging.getLogger(__name__)

USED = ".used"
LOCKS = ".locks"
CYCLE_NAME = re.compile(r"^\d{10}$")
GB = 10**9


@dataclass(frozen=True)
class CacheBound:
    max_bytes: int
    max_age: timedelta

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_age <= timedelta(0):
            raise ValueError(f"a cache bound must be positive, got {self.max_bytes} bytes "
                             f"and {self.max_age}")

    @classmethod
    def of(cls, data: DataSettings) -> CacheBound:
        return cls(int(data.gfs_cache_max_gb * GB), timedelta(days=data.gfs_cache_max_age_days))


@dataclass(frozen=True)
class CachePrune:
    """What one :func:`prune` did; entries are cycle names."""

    aged: tuple[str, ...]
    over_bound: tuple[str, ...]
    busy: tuple[str, ...]
    kept_bytes: int

    def summary(self) -> str:
        return (f"GFS cache: {len(self.aged)} idle cycles and {len(self.over_bound)} over the "
                f"size bound removed, {len(self.busy)} in use kept, "
                f"{self.kept_bytes / GB:.2f} GB kept")


@dataclass(frozen=True)
class _Entry:
    name: str
    path: Path
    last_used: float
    nbytes: int


def cycle_name(cycle: datetime) -> str:
    return f"{cycle.astimezone(UTC):%Y%m%d%H}"



def using(root: Path, cycle: datetime, clock: Now) -> ExitStack:
    """Hold ``cycle`` against pruning (a shared lock) and record its use at ``clock()``.
    Blocks only while a prune removes that cycle."""
    name = cycle_name(cycle)
    with ExitStack() as stack:
        stack.enter_context(held(root / LOCKS / f"{name}.lock", fcntl.LOCK_SH))
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / USED).touch()
        moment = clock().timestamp()
        os.utime(folder / USED, (moment, moment))
        return stack.pop_all()


def _size(folder: Path) -> int:
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(parent, name)).st_size
            except FileNotFoundError:  # a temporary file renamed meanwhile
                continue
    return total


def _entry(folder: Path) -> _Entry:
    marker = folder / USED
    if marker.exists():
        last = marker.stat().st_mtime
    else:  # written before uses were recorded: as old as its cycle
        last = datetime.strptime(folder.name, "%Y%m%d%H").replace(tzinfo=UTC).timestamp()
    return _Entry(folder.name, folder, last, _size(folder))


def entries(root: Path) -> list[_Entry]:
    """The cache's cycles, least recently used first."""
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        if folder.is_dir() and CYCLE_NAME.match(folder.name):
            try:
                found.append(_entry(folder))
            except FileNotFoundError:  # removed by another process meanwhile
                continue
    return sorted(found, key=lambda e: (e.last_used, e.name))


def _evict(root: Path, entry: _Entry) -> bool:
    """Remove ``entry`` unless someone holds it (False then)."""
    lock = root / LOCKS / f"{entry.name}.lock"
    fd = lock_fd(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    if fd is None:
        return False
    try:
        shutil.rmtree(entry.path, ignore_errors=True)
        lock.unlink(missing_ok=True)
    finally:
        os.close(fd)
    return True


def prune(root: Path, bound: CacheBound, now: datetime) -> CachePrune:
    """Remove cycles idle longer than ``bound.max_age`` at ``now``, then the least recently
    used until at most ``bound.max_bytes`` remain; cycles in use are kept."""
    oldest_kept = now.timestamp() - bound.max_age.total_seconds()
    aged: list[str] = []
    over: list[str] = []
    busy: list[str] = []
    kept: list[_Entry] = []
    for entry in entries(root):
        if entry.last_used < oldest_kept:
            if _evict(root, entry):
                aged.append(entry.name)
                continue
            busy.append(entry.name)
        kept.append(entry)
    total = sum(e.nbytes for e in kept)
    for entry in kept:  # least recently used first
        if total <= bound.max_bytes:
            break
        if _evict(root, entry):
            over.append(entry.name)
            total -= entry.nbytes
        elif entry.name not in busy:
            busy.append(entry.name)
    report = CachePrune(tuple(aged), tuple(over), tuple(busy), total)
    if aged or over:
        log.info("%s", report.summary())
    return report

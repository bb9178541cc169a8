"""The GFS message cache's bound on real files: by age on the injected clock, then by size,
least recently used first, never a cycle another process is reading."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gaia.clock import VirtualClock
from gaia.tasks.defined_tasks.weather.data import gfs_cache
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource
from gaia.tasks.defined_tasks.weather.data.gfs_cache import CacheBound, prune
from tests.fixtures.miner import REPO_ROOT

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
MESSAGE = 1000  # bytes of each message file


def _cycle(root: Path, cycle: datetime, used_at: datetime, messages: int = 2) -> str:
    """A cycle with ``messages`` message files, last used at ``used_at``."""
    with gfs_cache.using(root, cycle, lambda: used_at):
        for n in range(messages):
            path = root / gfs_cache.cycle_name(cycle) / "f000" / f"t_{n}.grib2"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"G" * MESSAGE)
    return gfs_cache.cycle_name(cycle)


def _cycles(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if gfs_cache.CYCLE_NAME.match(p.name)}


def _bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()
               and gfs_cache.CYCLE_NAME.match(p.relative_to(root).parts[0]))


def test_cycles_nobody_read_for_the_max_age_go(tmp_path: Path) -> None:
    now = T0 + timedelta(days=10)
    old = _cycle(tmp_path, T0, used_at=now - timedelta(days=4))
    reused = _cycle(tmp_path, T0 - timedelta(hours=6), used_at=now - timedelta(days=1))
    fresh = _cycle(tmp_path, T0 + timedelta(days=9), used_at=now - timedelta(hours=2))
    reference = tmp_path / "references" / "gfs" / "20261101T1200" / "f000.t.npy"
    reference.parent.mkdir(parents=True)
    reference.write_bytes(b"R" * 10 * MESSAGE)  # the reference cache's: never an entry
    report = prune(tmp_path, CacheBound(10**9, timedelta(days=3)), now)
    assert report.aged == (old,) and report.over_bound == () and report.busy == ()
    assert _cycles(tmp_path) == {reused, fresh}  # by last use, not by cycle time
    assert reference.exists()
    assert report.kept_bytes == _bytes(tmp_path) == 4 * MESSAGE


def test_over_the_size_bound_the_least_recently_used_go_first(tmp_path: Path) -> None:
    now = T0 + timedelta(days=2)
    names = [_cycle(tmp_path, T0 + timedelta(hours=6 * n), used_at=now - timedelta(hours=10 - n))
             for n in range(5)]
    _cycle(tmp_path, T0 + timedelta(hours=6 * 0), used_at=now)  # the oldest cycle, read again
    bound = CacheBound(max_bytes=int(6.5 * MESSAGE), max_age=timedelta(days=3))
    report = prune(tmp_path, bound, now)
    assert report.over_bound == (names[1], names[2])
    assert _cycles(tmp_path) == {names[0], names[3], names[4]}
    assert report.kept_bytes == _bytes(tmp_path) == 6 * MESSAGE <= bound.max_bytes
    again = prune(tmp_path, bound, now)
    assert again.over_bound == again.aged == () and len(_cycles(tmp_path)) == 3


def test_a_cycle_unknown_to_the_clock_ages_from_its_cycle_time(tmp_path: Path) -> None:
    """A cache written before uses were recorded has no ``.used``: its cycles count as old as
    their init time."""
    for cycle in (T0, T0 + timedelta(days=5)):
        folder = tmp_path / gfs_cache.cycle_name(cycle) / "f000"
        folder.mkdir(parents=True)
        (folder / "t_850.grib2").write_bytes(b"G" * MESSAGE)
    report = prune(tmp_path, CacheBound(10**9, timedelta(days=3)), T0 + timedelta(days=6))
    assert report.aged == (gfs_cache.cycle_name(T0),)
    assert _cycles(tmp_path) == {gfs_cache.cycle_name(T0 + timedelta(days=5))}


HOLDER = """
import sys
from datetime import datetime
from pathlib import Path
from gaia.tasks.defined_tasks.weather.data import gfs_cache
cycle = datetime.fromisoformat(sys.argv[2])
with gfs_cache.using(Path(sys.argv[1]), cycle, lambda: cycle):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_cycle_another_process_reads_is_kept_until_it_is_done(tmp_path: Path) -> None:
    now = T0 + timedelta(days=30)
    held = _cycle(tmp_path, T0, used_at=T0)
    idle = _cycle(tmp_path, T0 + timedelta(hours=6), used_at=T0)
    reader = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), T0.isoformat()],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=REPO_ROOT)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "held"
        tight = CacheBound(max_bytes=1, max_age=timedelta(days=3))
        first = prune(tmp_path, tight, now)
        assert first.aged == (idle,) and first.busy == (held,)
        assert _cycles(tmp_path) == {held} and first.kept_bytes == 2 * MESSAGE
    finally:
        assert reader.stdin is not None
        reader.stdin.close()
        reader.wait(timeout=30)
    assert reader.returncode == 0
    second = prune(tmp_path, tight, now)
    assert second.aged == (held,) and _cycles(tmp_path) == set()
    assert not list((tmp_path / gfs_cache.LOCKS).iterdir())  # freed locks are unlinked


async def test_gfs_source_records_its_reads_on_its_clock(
    archive, clean_archive_server, tmp_path: Path  # noqa: ANN001
) -> None:
    init = archive.init_times[0]
    clock = VirtualClock(init + timedelta(hours=5))
    base = archive.gfs_base_url(clean_archive_server.url)
    async with GfsSource(base, tmp_path, backoff_s=0.01, clock=clock) as gfs:
        await gfs.fetch_analysis([init], variables=["2t"])
        entry, = gfs_cache.entries(tmp_path)
        assert entry.name == gfs_cache.cycle_name(init) and entry.last_used == clock().timestamp()
        clock.advance_to(clock() + timedelta(days=4))
        report = prune(tmp_path, CacheBound(10**9, timedelta(days=3)), clock())
        assert report.aged == (entry.name,) and gfs_cache.entries(tmp_path) == []
        served = clean_archive_server.count_requests(".f000")
        again = await gfs.fetch_analysis([init], variables=["2t"])
    assert clean_archive_server.count_requests(".f000") > served  # fetched again, not missing
    assert set(again.data_vars) == {"2t"}
    assert [e.last_used for e in gfs_cache.entries(tmp_path)] == [clock().timestamp()]

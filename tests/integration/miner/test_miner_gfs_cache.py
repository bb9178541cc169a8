"""A real miner process bounds its GFS message cache in its maintenance loop."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gaia.clock import system_clock
from gaia.tasks.defined_tasks.weather.data import gfs_cache
from gaia.tasks.defined_tasks.weather.pipeline.timing import floor_to_cycle
from tests.fixtures.miner import MinerArchive, MinerIdentities, new_miner


def _wait_gone(path: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} is still there after {timeout_s} s")
        time.sleep(0.1)


def test_the_miner_removes_cycles_nobody_read_for_the_max_age(
    miner_identities: MinerIdentities, miner_archive: MinerArchive, tmp_path: Path,
) -> None:
    data_dir = tmp_path / "miner"
    cache = data_dir / "gfs-cache"
    now = datetime.now(UTC)
    stale = floor_to_cycle(now - timedelta(days=4))
    for cycle, clock in ((stale, lambda: now - timedelta(days=4)), (now, system_clock)):
        with gfs_cache.using(cache, floor_to_cycle(cycle), clock):
            message = cache / gfs_cache.cycle_name(floor_to_cycle(cycle)) / "f000" / "t_850.grib2"
            message.parent.mkdir(parents=True, exist_ok=True)
            message.write_bytes(b"G" * 1000)
    miner = new_miner(miner_identities, miner_archive, data_dir,
                      extra_args=("--data.gfs-cache-max-age-days", "3"))
    miner.start()
    try:
        _wait_gone(cache / gfs_cache.cycle_name(stale))
        assert [e.name for e in gfs_cache.entries(cache)] == [
            gfs_cache.cycle_name(floor_to_cycle(now))]
    finally:
        miner.stop()

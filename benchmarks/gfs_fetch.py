"""Benchmark: GFS inputs for one cycle (2 times x 69 fields at 0.25 deg) from a local server.

Writes two GFS-layout f000 files at 0.25 deg (83 messages each: the 69 needed + RH,
GFS's complex packing) once into a work directory, serves them with ArchiveServer on
loopback, and runs ``GfsSource.fetch_inputs`` in a fresh subprocess:

* cold: empty cache (inventory + byte ranges + decode);
* warm: everything cached (decode only), to show what bounds the cold fetch.

Prints seconds, requests, bytes moved vs needed messages vs file sizes, peak RSS of the
client process. Also prints what the 69 messages weigh in a real GFS f000 inventory.

    .venv/bin/python benchmarks/gfs_fetch.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource, gfs_file_path
from gaia.tasks.defined_tasks.weather.data.gfs_idx import (
    merge_ranges,
    needed_fields,
    parse_inventory,
    select_messages,
)
from gaia.tasks.defined_tasks.weather.data.gfs_writer import write_gfs_file
from gaia.tasks.defined_tasks.weather.data.grib import GribEncoder
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.data.synthetic import SyntheticWeather

INIT = datetime(2025, 1, 1, 6, tzinfo=UTC)
TIMES = (INIT - timedelta(hours=6), INIT)
REAL_F000_IDX = Path(__file__).resolve().parents[1].parent / (
    "shared/realdata/gfs_idx/reformatters__gfs.t00z.pgrb2.0p25.f000.idx")


def build(workdir: Path) -> float:
    """Write the two 0.25 deg f000 files (skipped when present); returns seconds."""
    if all((workdir / (gfs_file_path(t, 0) + ".idx")).exists() for t in TIMES):
        return 0.0
    started = time.perf_counter()
    grid = Grid.regular(0.25)
    weather = SyntheticWeather(grid, TIMES[0], 2, seed=1)
    encoder = GribEncoder(grid, packing="grid_complex_spatial_differencing")
    for step, cycle in enumerate(TIMES):
        write_gfs_file(workdir, encoder, cycle, 0, weather.forecast(step, 0))
    encoder.close()
    return time.perf_counter() - started


def needed_bytes(workdir: Path) -> tuple[int, int]:
    """(bytes of the 69 needed messages, bytes of the files) over both times."""
    needed = total = 0
    for cycle in TIMES:
        grib = workdir / gfs_file_path(cycle, 0)
        size = grib.stat().st_size
        picked = select_messages(parse_inventory(grib.with_name(grib.name + ".idx").read_text()),
                                 needed_fields(), 0)
        needed += sum((e.end or size) - e.offset for e in picked.values())
        total += size
    return needed, total


async def _fetch(base_url: str, cache: Path) -> dict[str, float]:
    started = time.perf_counter()
    async with GfsSource(base_url, cache) as gfs:
        ds = await gfs.fetch_inputs(INIT)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "fields": len(ds.data_vars),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def client_main(base_url: str, cache: str) -> None:
    print(json.dumps(asyncio.run(_fetch(base_url, Path(cache)))))


def _run_client(base_url: str, cache: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--client", base_url, str(cache)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def real_gfs_figures() -> str:
    if not REAL_F000_IDX.exists():
        return "real f000 inventory not found"
    entries = parse_inventory(REAL_F000_IDX.read_text())
    picked = select_messages(entries, needed_fields(), 0)
    size = sum((e.end or e.offset) - e.offset for e in picked.values())
    last = entries[-1].offset
    ranges = merge_ranges(picked.values())
    return (f"real GFS f000 (2025-08-01): 69 messages = {size / 1e6:.1f} MB of >= {last / 1e6:.0f} MB"
            f" ({100 * size / last:.1f} %), {len(ranges)} merged ranges")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gfs_bench")
    parser.add_argument("--client", nargs=2, metavar=("BASE_URL", "CACHE"))
    args = parser.parse_args()
    if args.client:
        client_main(*args.client)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"build: {build(args.workdir):.1f} s (0 = reused)")
    needed, total = needed_bytes(args.workdir)
    with ArchiveServer(args.workdir) as server, tempfile.TemporaryDirectory() as cache:
        cold = _run_client(server.url, Path(cache))
        moved, requests = server.bytes_sent, len(server.requests)
        server.reset()
        warm = _run_client(server.url, Path(cache))
        assert not server.requests, "warm fetch made requests"
    idx_bytes = sum((args.workdir / (gfs_file_path(t, 0) + ".idx")).stat().st_size for t in TIMES)
    print(f"cold fetch: {cold['seconds']:.2f} s, {requests} requests, peak RSS "
          f"{cold['peak_rss_mb']:.0f} MB")
    print(f"warm (cache, decode only): {warm['seconds']:.2f} s, peak RSS "
          f"{warm['peak_rss_mb']:.0f} MB")
    print(f"bytes moved {moved / 1e6:.2f} MB = {moved / needed:.4f} x needed messages "
          f"({needed / 1e6:.2f} MB; idx {idx_bytes / 1e3:.1f} kB), files {total / 1e6:.2f} MB")
    print(real_gfs_figures())


if __name__ == "__main__":
    main()

"""A local, weather-shaped archive in the real formats, and its command line.

``build_archive`` writes under one root directory:

* ``gfs/gfs.YYYYMMDD/HH/atmos/gfs.tHHz.pgrb2.0p25.fFFF`` (+ ``.idx``): real GRIB2 (ecCodes,
  NCEP keys) with wgrib2-style inventories: f000 (the analysis) and the forecast leads of
  each 6-hourly cycle. The file names are NOAA's, whatever the grid, so a ``GfsSource``
  needs nothing but the base URL. Every f000 also carries the static fields (land cover,
  orography, soil type: ``synthetic_statics`` of the seed), as the real one does.
* ``era5.zarr``: zarr v2 with consolidated metadata and ARCO names, descending float32
  latitude, ascending int64 levels, float32 data, one chunk per time step; the time axis
  is padded past the data (missing chunks) and the root attrs ``valid_time_start`` /
  ``valid_time_stop`` mark the data, as in the real store.
* ``climatology.zarr``: WeatherBench2 layout (hour, dayofyear, [level,] latitude,
  longitude), hour 0/6/12/18, the days of year the archive spans (the real store has
  1..366; readers select by value).
* ``archive.json``: the ``ArchiveInfo`` below. Its ``format_version`` says what layout
  wrote the archive; a cached archive that is not ``is_current`` must be rebuilt.

Commands::

    python -m gaia.tasks.defined_tasks.weather.data.archive build DIR --grid 2.5 \
        --start 2025-01-01 --days 12
    python -m gaia.tasks.defined_tasks.weather.data.archive serve DIR --port 8123
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numcodecs
import numpy as np
import pandas as pd
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.data.era5 import LEXICON
from gaia.tasks.defined_tasks.weather.data.gfs_writer import write_gfs_file
from gaia.tasks.defined_tasks.weather.data.grib import GribEncoder
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.data.synthetic import (
    STEP_HOURS,
    Fields,
    SyntheticWeather,
    synthetic_statics,
)
from gaia.tasks.defined_tasks.weather.variables import (
    ALL_VARIABLES,
    MAX_LEAD_HOURS,
    PRESSURE_LEVELS_HPA,
    is_level_variable,
)

DEFAULT_GRID_DEG = 2.5
DEFAULT_FORECAST_HOURS: tuple[int, ...] = (6, 12, 18, 24)
TRUTH_MARGIN_HOURS = MAX_LEAD_HOURS + 24  # truth needed after the last cycle
PADDING_STEPS = 8  # time steps past valid_time_stop with no data, like the real store
_COMPRESSOR = numcodecs.Blosc(cname="lz4", clevel=5)
# 2: f000 files carry the static fields. Archives written before had no version (1).
ARCHIVE_FORMAT_VERSION = 2


@dataclass(frozen=True)
class ArchiveInfo:
    """What ``build_archive`` wrote; paths are relative to ``root`` and to a server URL."""

    root: Path
    grid_deg: float
    start: datetime
    days: int
    seed: int
    cycles: tuple[datetime, ...]
    forecast_hours: tuple[int, ...]
    truth_until: datetime
    gfs_prefix: str = "gfs"
    era5_path: str = "era5.zarr"
    climatology_path: str = "climatology.zarr"
    packing: str = field(default="grid_simple")
    format_version: int = ARCHIVE_FORMAT_VERSION

    @property
    def is_current(self) -> bool:
        """Whether this code's layout wrote the archive (else reuse means rebuild)."""
        return self.format_version == ARCHIVE_FORMAT_VERSION

    @property
    def grid(self) -> Grid:
        return Grid.regular(self.grid_deg)

    @property
    def init_times(self) -> tuple[datetime, ...]:
        """Cycles whose T-6 h analysis is in the archive too (usable as miner inits)."""
        return self.cycles[1:]

    @property
    def gfs_dir(self) -> Path:
        return self.root / self.gfs_prefix

    @property
    def era5_dir(self) -> Path:
        return self.root / self.era5_path

    @property
    def climatology_dir(self) -> Path:
        return self.root / self.climatology_path

    def gfs_base_url(self, server_url: str) -> str:
        return f"{server_url.rstrip('/')}/{self.gfs_prefix}"

    def era5_url(self, server_url: str) -> str:
        return f"{server_url.rstrip('/')}/{self.era5_path}"

    def climatology_url(self, server_url: str) -> str:
        return f"{server_url.rstrip('/')}/{self.climatology_path}"

    def to_json(self) -> str:
        data = asdict(self)
        del data["root"]  # the archive can be moved; load() takes the directory
        for key in ("start", "truth_until"):
            data[key] = data[key].isoformat()
        data["cycles"] = [c.isoformat() for c in self.cycles]
        return json.dumps(data, indent=1)

    @classmethod
    def load(cls, root: Path) -> ArchiveInfo:
        data = json.loads((Path(root) / "archive.json").read_text())
        data["root"] = Path(root)
        data["start"] = datetime.fromisoformat(data["start"])
        data["truth_until"] = datetime.fromisoformat(data["truth_until"])
        data["cycles"] = tuple(datetime.fromisoformat(c) for c in data["cycles"])
        data["forecast_hours"] = tuple(data["forecast_hours"])
        data.setdefault("format_version", 1)
        return cls(**data)


def _cycles(start: datetime, days: int, cycle_days: float | None) -> tuple[datetime, ...]:
    span = (days * 24 - TRUTH_MARGIN_HOURS) / 24 if cycle_days is None else cycle_days
    count = max(2, int(span * 24 // STEP_HOURS))
    return tuple(start + timedelta(hours=STEP_HOURS * i) for i in range(count))


def build_archive(
    root: Path, *, grid_deg: float = DEFAULT_GRID_DEG, start: datetime, days: int,
    seed: int = 0, forecast_hours: Sequence[int] = DEFAULT_FORECAST_HOURS,
    cycle_days: float | None = None, packing: str = "grid_simple",
) -> ArchiveInfo:
    """Write a local archive under ``root`` (replacing one that is there).

    Truth (ERA5) covers ``days`` days of 6-hourly steps from ``start``. GFS cycles run
    every 6 h over ``cycle_days`` days (default: as long as truth reaches 10 days + 1 day
    past the cycle, at least 2 cycles); each has f000 plus ``forecast_hours``.
    """
    if start.tzinfo is None or start.hour % STEP_HOURS or start.minute:
        raise ValueError(f"start {start!r} must be a timezone-aware 6-hourly UTC time")
    steps = days * 24 // STEP_HOURS
    cycles = _cycles(start, days, cycle_days)
    last_needed = cycles[-1] + timedelta(hours=max(forecast_hours, default=0))
    if (last_needed - start) / timedelta(hours=STEP_HOURS) >= steps:
        raise ValueError(f"{days} days of truth do not reach {last_needed.isoformat()}")
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    info = ArchiveInfo(
        root=root, grid_deg=grid_deg, start=start, days=days, seed=seed, cycles=cycles,
        forecast_hours=tuple(int(h) for h in forecast_hours),
        truth_until=start + timedelta(hours=STEP_HOURS * (steps - 1)), packing=packing,
    )
    weather = SyntheticWeather(info.grid, start, steps, seed)
    truths = [weather.truth(i) for i in range(steps)]
    _write_gfs(info, weather, truths)
    _write_era5(info, truths)
    _write_climatology(info, weather)
    (root / "archive.json").write_text(info.to_json())
    return info


def _write_gfs(info: ArchiveInfo, weather: SyntheticWeather, truths: list[Fields]) -> None:
    encoder = GribEncoder(info.grid, packing=info.packing)
    statics = synthetic_statics(info.grid, info.seed)
    try:
        for cycle in info.cycles:
            step = weather.step_of(cycle)
            for lead in (0, *info.forecast_hours):
                fields = weather.forecast(step, lead, truths[step + lead // STEP_HOURS])
                write_gfs_file(info.gfs_dir, encoder, cycle, lead, fields,
                               statics if lead == 0 else None)
    finally:
        encoder.close()


def _coords(grid: Grid) -> dict[str, tuple]:
    return {
        "latitude": ("latitude", grid.lat.astype(np.float32),
                     {"long_name": "latitude", "units": "degrees_north"}),
        "longitude": ("longitude", grid.lon.astype(np.float32),
                      {"long_name": "longitude", "units": "degrees_east"}),
        "level": ("level", np.asarray(PRESSURE_LEVELS_HPA, dtype=np.int64)),
    }


def _write_zarr(ds: xr.Dataset, path: Path, chunks: Mapping[str, tuple[int, ...]]) -> None:
    encoding = {
        name: {"chunks": chunks[str(name)], "compressors": [_COMPRESSOR], "_FillValue": np.float32("nan")}
        for name in ds.data_vars
    }
    ds.to_zarr(path, mode="w", zarr_format=2, consolidated=True, encoding=encoding)


def _write_era5(info: ArchiveInfo, truths: list[Fields]) -> None:
    grid, steps = info.grid, len(truths)
    times = pd.date_range(info.start.replace(tzinfo=None), periods=steps + PADDING_STEPS,
                          freq=f"{STEP_HOURS}h")
    data_vars = {}
    for name in ALL_VARIABLES:
        arco, attrs = LEXICON[name]
        level = is_level_variable(name)
        shape = (len(times), len(PRESSURE_LEVELS_HPA), *grid.shape) if level else (
            len(times), *grid.shape)
        values = np.full(shape, np.nan, dtype=np.float32)
        values[:steps] = np.stack([t[name] for t in truths])
        dims = ("time", "level", "latitude", "longitude") if level else (
            "time", "latitude", "longitude")
        data_vars[arco] = (dims, values, attrs)
    ds = xr.Dataset(data_vars, coords={"time": times, **_coords(grid)})
    ds.attrs = {"valid_time_start": info.start.strftime("%Y-%m-%dT%H:%M:%S"),
                "valid_time_stop": info.truth_until.strftime("%Y-%m-%dT%H:%M:%S")}
    ds["time"].encoding = {"units": "hours since 1900-01-01", "dtype": "int64"}
    chunks = {LEXICON[n][0]: (1, len(PRESSURE_LEVELS_HPA), *grid.shape) if is_level_variable(n)
              else (1, *grid.shape) for n in ALL_VARIABLES}
    _write_zarr(ds, info.era5_dir, chunks)


def _write_climatology(info: ArchiveInfo, weather: SyntheticWeather) -> None:
    grid = info.grid
    first = info.start - timedelta(days=1)
    days = pd.date_range(first.replace(tzinfo=None), periods=info.days + 2, freq="D")
    doys = sorted({int(d.day_of_year) for d in days})
    hours = [0, 6, 12, 18]
    means = [[weather.mean(doy, hour) for doy in doys] for hour in hours]
    data_vars = {}
    for name in ALL_VARIABLES:
        arco, attrs = LEXICON[name]
        values = np.stack([np.stack([m[name] for m in row]) for row in means]).astype(np.float32)
        dims = ("hour", "dayofyear", "level", "latitude", "longitude") if is_level_variable(
            name) else ("hour", "dayofyear", "latitude", "longitude")
        data_vars[arco] = (dims, values, attrs)
    coords = {"hour": ("hour", np.asarray(hours, dtype=np.int64)),
              "dayofyear": ("dayofyear", np.asarray(doys, dtype=np.int64)), **_coords(grid)}
    ds = xr.Dataset(data_vars, coords=coords)
    # WB2 chunks are (3, 3, [1,] lat, lon); one chunk per day of year writes far fewer files
    chunks = {LEXICON[n][0]: (4, 1, len(PRESSURE_LEVELS_HPA), *grid.shape) if is_level_variable(n)
              else (4, 1, *grid.shape) for n in ALL_VARIABLES}
    _write_zarr(ds, info.climatology_dir, chunks)


# -- command line ---------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gaia.tasks.defined_tasks.weather.data.archive")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write a local archive")
    build.add_argument("root", type=Path)
    build.add_argument("--grid", type=float, default=DEFAULT_GRID_DEG, help="degrees")
    build.add_argument("--start", required=True, help="YYYY-MM-DD[THH] (UTC)")
    build.add_argument("--days", type=int, required=True)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--forecast-hours", type=int, nargs="*", default=list(DEFAULT_FORECAST_HOURS))
    build.add_argument("--cycle-days", type=float, default=None)
    serve = sub.add_parser("serve", help="serve an archive over loopback HTTP")
    serve.add_argument("root", type=Path)
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--latency-s", type=float, default=0.0, help="delay every response")
    serve.add_argument("--fail-next", type=int, default=0, help="answer 503 to N requests")
    serve.add_argument("--truncate-next", type=int, default=0, help="cut N bodies in half")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "build":
        start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
        info = build_archive(args.root, grid_deg=args.grid, start=start, days=args.days,
                             seed=args.seed, forecast_hours=args.forecast_hours,
                             cycle_days=args.cycle_days)
        print(f"built {info.root}: {len(info.cycles)} cycles "
              f"{info.cycles[0].isoformat()}..{info.cycles[-1].isoformat()}, "
              f"truth to {info.truth_until.isoformat()}, grid {info.grid_deg} deg")
        return 0
    info = ArchiveInfo.load(args.root)
    server = ArchiveServer(info.root, port=args.port)
    server.latency_s = args.latency_s
    server.fail_next(args.fail_next)
    server.truncate_next(args.truncate_next)
    with server:
        print(f"serving {info.root} at {server.url}\n  GFS base: {info.gfs_base_url(server.url)}"
              f"\n  ERA5: {info.era5_url(server.url)}\n  climatology: "
              f"{info.climatology_url(server.url)}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reference stores for the validator-cost benchmark, in the layouts the real ones use.

* ``era5.zarr``: ARCO ERA5 (``full_37-1h-0p25deg-chunk-1.zarr-v3``): zarr v2, consolidated,
  ARCO names and variable attrs, dims (time, level, latitude, longitude), the 37 ARCO
  levels ascending, latitude 90..-90 and longitude 0..359.75 as float32, chunks
  (1, 37, lat, lon) and (1, lat, lon), Blosc lz4 clevel 5, root attrs
  ``valid_time_start``/``valid_time_stop``. The time axis is hourly like the real one but
  short (init − 24 h .. init + 264 h, encoded as hours since 1900-01-01, so a chunk's time
  index is its offset in this axis, not the real store's 1900-based index), and only the
  chunks at the valid times a run scores exist (the rest are missing, as in a padded store).
* ``climatology.zarr``: WeatherBench-2 (``1990-2019_6h_1440x721.zarr``): dims (hour,
  dayofyear, [level,] latitude, longitude), hour 0/6/12/18, dayofyear 1..366, the 13 WB2
  levels, chunks (3, 3, [1,] lat, lon); only the chunks holding a needed (hour, day of
  year) pair are written, each with all of its 3 × 3 pairs.
* ``gfs/``: GFS pgrb2 GRIB2 files in NOAA's layout with wgrib2 ``.idx`` beside them, written
  by the project's ``write_gfs_file`` (every field the project knows, so the reader selects
  by inventory), for the day-1 reference leads.

Fields come from ``SyntheticWeather`` (the local archive's weather): truth is a
climatological mean plus travelling anomalies plus grid-scale noise, the GFS reference and
the miners' forecasts are truth plus a smooth error growing with lead. Levels the project
does not use (the 24 extra ARCO levels) are interpolated in log pressure, so the chunks
compress like the others. ``CountingServer`` serves one store over loopback and counts its
response bodies and GETs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numcodecs
import numpy as np
import pandas as pd
import zarr

from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.data.era5 import LEXICON
from gaia.tasks.defined_tasks.weather.data.gfs_writer import write_gfs_file
from gaia.tasks.defined_tasks.weather.data.grib import GribEncoder
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.data.synthetic import STEP_HOURS, Fields, SyntheticWeather
from gaia.tasks.defined_tasks.weather.variables import (
    ALL_VARIABLES,
    PRESSURE_LEVELS_HPA,
    is_level_variable,
)

ARCO_LEVELS: tuple[int, ...] = (
    1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100, 125, 150, 175, 200, 225, 250, 300, 350, 400, 450,
    500, 550, 600, 650, 700, 750, 775, 800, 825, 850, 875, 900, 925, 950, 975, 1000,
)
WB2_HOURS: tuple[int, ...] = (0, 6, 12, 18)
WB2_DAYS = 366
WB2_CHUNK = 3  # hours and days of year per climatology chunk
ERA5_BEFORE_H, ERA5_AFTER_H = 24, 264
COMPRESSOR = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
GFS_PACKING = "grid_complex_spatial_differencing"  # what NCEP's 0.25° pgrb2 files use
DONE_FILE = "references.json"


@dataclass(frozen=True)
class ReferencePlan:
    """Which references a run needs: the grid, the init and the scored leads."""

    grid_deg: float
    init_time: datetime
    day1_leads: tuple[int, ...]
    era5_leads: tuple[int, ...]
    seed: int = 3

    @property
    def grid(self) -> Grid:
        return Grid.regular(self.grid_deg)

    @property
    def leads(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.day1_leads) | set(self.era5_leads)))

    def valid(self, lead: int) -> datetime:
        return self.init_time + timedelta(hours=lead)

    def weather(self) -> SyntheticWeather:
        steps = max(self.leads) // STEP_HOURS + 1
        return SyntheticWeather(self.grid, self.init_time, steps, self.seed)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "init_time": self.init_time.isoformat()}, sort_keys=True)


@dataclass(frozen=True)
class ReferencePaths:
    root: Path

    @property
    def era5(self) -> Path:
        return self.root / "era5.zarr"

    @property
    def climatology(self) -> Path:
        return self.root / "climatology.zarr"

    @property
    def gfs(self) -> Path:
        return self.root / "gfs"

    def is_built_for(self, plan: ReferencePlan) -> bool:
        done = self.root / DONE_FILE
        return done.exists() and done.read_text() == plan.to_json()

    def mark_built(self, plan: ReferencePlan) -> None:
        (self.root / DONE_FILE).write_text(plan.to_json())


def truths(plan: ReferencePlan, weather: SyntheticWeather) -> Iterator[tuple[int, Fields]]:
    """(lead, truth at init + lead) for every lead of the run, one state at a time."""
    for lead in plan.leads:
        yield lead, weather.truth(lead // STEP_HOURS)


def forecast_of(plan: ReferencePlan, seed: int, lead: int, truth: Fields) -> Fields:
    """A forecast of ``truth``: truth plus a smooth error drawn from ``seed`` (GFS, a miner)."""
    other = SyntheticWeather(plan.grid, plan.init_time, lead // STEP_HOURS + 1, seed)
    return other.forecast(0, lead, truth)


def to_levels(values: np.ndarray, source: Sequence[int], target: Sequence[int]) -> np.ndarray:
    """(level, lat, lon) from ``source`` to ``target`` levels, linear in log pressure
    (constant beyond the ends), as float32."""
    x = np.log(np.asarray(source, dtype=np.float64))
    order = np.argsort(x)
    x, values = x[order], values[order]
    out = np.empty((len(target), *values.shape[1:]), dtype=np.float32)
    for index, level in enumerate(target):
        position = float(np.clip(np.log(level), x[0], x[-1]))
        upper = int(np.clip(np.searchsorted(x, position), 1, len(x) - 1))
        weight = (position - x[upper - 1]) / (x[upper] - x[upper - 1])
        out[index] = (1 - weight) * values[upper - 1] + weight * values[upper]
    return out


def _coordinate(group: zarr.Group, name: str, values: np.ndarray, attrs: dict) -> None:
    array = group.create_array(name, shape=values.shape, chunks=values.shape, dtype=values.dtype,
                               compressors=COMPRESSOR, fill_value=None,
                               attributes={"_ARRAY_DIMENSIONS": [name], **attrs})
    array[:] = values


def _lat_lon(group: zarr.Group, grid: Grid) -> None:
    _coordinate(group, "latitude", grid.lat.astype(np.float32),
                {"long_name": "latitude", "units": "degrees_north"})
    _coordinate(group, "longitude", grid.lon.astype(np.float32),
                {"long_name": "longitude", "units": "degrees_east"})


def _variables(group: zarr.Group, lead_dims: tuple[tuple[str, int, int], ...],
               levels: int, grid: Grid) -> dict[str, zarr.Array]:
    """One float32 array per variable: ``lead_dims`` (name, size, chunk), then [level,] lat, lon."""
    arrays = {}
    for name in ALL_VARIABLES:
        arco, attrs = LEXICON[name]
        dims = [d for d, _, _ in lead_dims] + (["level"] if is_level_variable(name) else [])
        shape = [s for _, s, _ in lead_dims] + ([levels] if is_level_variable(name) else [])
        chunks = [c for _, _, c in lead_dims] + ([levels if dims[0] == "time" else 1]
                                                 if is_level_variable(name) else [])
        arrays[name] = group.create_array(
            arco, shape=(*shape, *grid.shape), chunks=(*chunks, *grid.shape), dtype="float32",
            compressors=COMPRESSOR, fill_value=float("nan"),
            attributes={"_ARRAY_DIMENSIONS": [*dims, "latitude", "longitude"], **attrs})
    return arrays


class Era5Writer:
    """The ARCO-shaped store; ``write(lead, truth)`` fills the chunks of one valid time."""

    def __init__(self, path: Path, plan: ReferencePlan):
        self.plan = plan
        first = plan.init_time - timedelta(hours=ERA5_BEFORE_H)
        self.times = pd.date_range(first.replace(tzinfo=None), periods=ERA5_BEFORE_H + ERA5_AFTER_H + 1,
                                   freq="h")
        group = zarr.open_group(path, mode="w", zarr_format=2, attributes={
            "valid_time_start": first.strftime("%Y-%m-%dT%H:%M:%S"),
            "valid_time_stop": plan.valid(max(plan.era5_leads)).strftime("%Y-%m-%dT%H:%M:%S")})
        hours = ((self.times - pd.Timestamp("1900-01-01")) // pd.Timedelta(hours=1)).to_numpy()
        _coordinate(group, "time", hours.astype(np.int64),
                    {"units": "hours since 1900-01-01", "calendar": "proleptic_gregorian"})
        _coordinate(group, "level", np.asarray(ARCO_LEVELS, dtype=np.int64), {})
        _lat_lon(group, plan.grid)
        self.arrays = _variables(group, (("time", len(self.times), 1),), len(ARCO_LEVELS),
                                 plan.grid)
        self.path = path

    def write(self, lead: int, truth: Fields) -> None:
        index = self.times.get_loc(pd.Timestamp(self.plan.valid(lead).replace(tzinfo=None)))
        for name, array in self.arrays.items():
            values = truth[name]
            if is_level_variable(name):
                values = to_levels(values, PRESSURE_LEVELS_HPA, ARCO_LEVELS)
            array[index] = values.astype(np.float32)

    def close(self) -> None:
        zarr.consolidate_metadata(str(self.path))


def _field_shape(name: str, grid: Grid) -> tuple[int, ...]:
    levels = (len(PRESSURE_LEVELS_HPA),) if is_level_variable(name) else ()
    return (*levels, *grid.shape)


def climatology_keys(plan: ReferencePlan) -> list[tuple[int, int]]:
    """(hour, day of year) of every valid time the run scores."""
    return sorted({(plan.valid(lead).hour, plan.valid(lead).timetuple().tm_yday)
                   for lead in plan.leads})


def write_climatology(path: Path, plan: ReferencePlan, weather: SyntheticWeather) -> None:
    """The WB2-shaped store with whole chunks around the needed (hour, day of year) pairs."""
    group = zarr.open_group(path, mode="w", zarr_format=2)
    _coordinate(group, "hour", np.asarray(WB2_HOURS, dtype=np.int64), {})
    _coordinate(group, "dayofyear", np.arange(1, WB2_DAYS + 1, dtype=np.int64), {})
    _coordinate(group, "level", np.asarray(PRESSURE_LEVELS_HPA, dtype=np.int64), {})
    _lat_lon(group, plan.grid)
    arrays = _variables(group, (("hour", len(WB2_HOURS), WB2_CHUNK),
                                ("dayofyear", WB2_DAYS, WB2_CHUNK)), len(PRESSURE_LEVELS_HPA),
                        plan.grid)
    blocks = sorted({(WB2_HOURS.index(hour) // WB2_CHUNK, (day - 1) // WB2_CHUNK)
                     for hour, day in climatology_keys(plan)})
    for hour_block, day_block in blocks:
        hours = WB2_HOURS[hour_block * WB2_CHUNK:(hour_block + 1) * WB2_CHUNK]
        days = range(day_block * WB2_CHUNK + 1, min(WB2_DAYS, (day_block + 1) * WB2_CHUNK) + 1)
        buffers = {name: np.empty((len(hours), len(days), *_field_shape(name, plan.grid)),
                                  dtype=np.float32) for name in ALL_VARIABLES}
        for i, hour in enumerate(hours):
            for j, day in enumerate(days):
                mean = weather.mean(day, hour)
                for name in ALL_VARIABLES:
                    buffers[name][i, j] = mean[name]
                del mean
        h0, d0 = hour_block * WB2_CHUNK, day_block * WB2_CHUNK
        for name, array in arrays.items():
            array[h0:h0 + len(hours), d0:d0 + len(days)] = buffers[name]
        del buffers
    zarr.consolidate_metadata(str(path))


class GfsWriter:
    """GFS pgrb2 files of the run's init for the day-1 reference leads."""

    def __init__(self, root: Path, plan: ReferencePlan):
        self.root, self.plan = root, plan
        self.encoder = GribEncoder(plan.grid, packing=GFS_PACKING)

    def write(self, lead: int, truth: Fields) -> None:
        fields = forecast_of(self.plan, self.plan.seed + 1000, lead, truth)
        write_gfs_file(self.root, self.encoder, self.plan.init_time, lead, fields)

    def close(self) -> None:
        self.encoder.close()


class CountingServer(ArchiveServer):
    """One store on loopback; ``body_bytes`` and ``gets`` count what the validator fetched."""

    @property
    def body_bytes(self) -> int:
        return self.bytes_sent

    @property
    def gets(self) -> int:
        return sum(1 for r in self.requests if r.method == "GET")

    def take(self) -> dict[str, int]:
        """The counts since the last ``take``, then zero."""
        counts = {"bytes": self.body_bytes, "gets": self.gets}
        self.reset()
        return counts

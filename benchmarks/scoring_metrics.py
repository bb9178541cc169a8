"""Scoring speed and memory at 0.25° (721 x 1440), data in memory.

1. ERA5 scoring of one lead, all 69 fields (RMSE, bias, ACC, skill): wall seconds (best
   and median of several runs), peak memory allocated above the data (tracemalloc sees
   numpy's buffers) and the rise of the process's peak RSS. For comparison, the same
   scores through the plain xarray metric functions, field by field.
2. Day-1 score of one miner: 6 fields x 3 leads.

The truth and climatology have ascending latitudes (WeatherBench-2 ERA5), the forecasts
descending ones (GFS grid), as in production.

    .venv/bin/python benchmarks/scoring_metrics.py [--repeat 5] [--nlat 721 --nlon 1440]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from gaia.tasks.defined_tasks.weather.scoring import metrics
from gaia.tasks.defined_tasks.weather.scoring.day1 import score_day1
from gaia.tasks.defined_tasks.weather.scoring.era5 import score_era5_lead
from gaia.tasks.defined_tasks.weather.scoring.fields import as_lead_fields
from gaia.tasks.defined_tasks.weather.variables import (
    LEVEL_VARIABLES,
    PRESSURE_LEVELS_HPA,
    SURFACE_VARIABLES,
    field_keys,
)

ERA5_LEAD = 24
DAY1_LEADS = (6, 12, 24)


def noise(nlat: int, nlon: int, leads: Sequence[int], levels: Sequence[int], scale: float,
          seed: int) -> xr.Dataset:
    """Every canonical variable as float32 Gaussian noise, latitudes ascending."""
    rng = np.random.default_rng(seed)
    coords = {"lead_hours": list(leads), "level": list(levels),
              "latitude": np.linspace(-90.0, 90.0, nlat),
              "longitude": np.arange(nlon) * (360.0 / nlon)}
    data_vars = {}
    for name in SURFACE_VARIABLES + LEVEL_VARIABLES:
        dims = ("lead_hours", "latitude", "longitude")
        if name in LEVEL_VARIABLES:
            dims = ("lead_hours", "level", "latitude", "longitude")
        shape = tuple(len(coords[dim]) for dim in dims)
        values = rng.standard_normal(shape, dtype=np.float32)
        values *= scale
        data_vars[name] = (dims, values)
    return xr.Dataset(data_vars, coords=coords)


def world(nlat: int, nlon: int, leads: Sequence[int], levels: Sequence[int]):
    """(forecast descending, truth, climatology), forecast = truth + noise = clim + more."""
    clim = noise(nlat, nlon, leads, levels, 1000.0, 0)
    truth = clim + noise(nlat, nlon, leads, levels, 10.0, 1)
    forecast = truth + noise(nlat, nlon, leads, levels, 5.0, 2)
    descending = forecast.isel(latitude=slice(None, None, -1))
    forecast = descending.copy(data={k: np.ascontiguousarray(v.values)
                                     for k, v in descending.data_vars.items()})
    return forecast, truth, clim


def xarray_metrics(forecast: xr.Dataset, truth: xr.Dataset, clim: xr.Dataset) -> None:
    """The same scores through the public xarray functions, field by field."""
    forecast = forecast.isel(latitude=slice(None, None, -1))
    for name, level in field_keys():
        pick = {"lead_hours": ERA5_LEAD} | ({} if level is None else {"level": level})
        f, t, c = (ds[name].sel(pick) for ds in (forecast, truth, clim))
        metrics.rmse(f, t), metrics.bias(f, t), metrics.acc(f, t, c), metrics.skill(f, t, c)


def timed(function: Callable[[], object], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def peak_extra_mb(function: Callable[[], object]) -> float:
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (peak - before) / 2**20


def peak_rss_extra_mb(function: Callable[[], object]) -> float:
    """Rise of the process's peak RSS during ``function`` (Linux: VmHWM after a reset)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    function()
    return (_status_kb("VmHWM") - before) / 1024


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def report(name: str, function: Callable[[], object], repeat: int) -> None:
    seconds = timed(function, repeat)
    print(f"{name}: best {min(seconds):.3f} s, median {statistics.median(seconds):.3f} s, "
          f"peak extra {peak_extra_mb(function):.1f} MB (tracemalloc), "
          f"peak RSS rise {peak_rss_extra_mb(function):.1f} MB")


def bench_era5(nlat: int, nlon: int, repeat: int) -> None:
    forecast, truth, clim = world(nlat, nlon, [ERA5_LEAD], PRESSURE_LEVELS_HPA)
    data_mb = sum(ds.nbytes for ds in (forecast, truth, clim)) / 2**20
    print(f"ERA5, one lead, 69 fields at {nlat}x{nlon}: {data_mb:.0f} MB of data")
    forecast_lead, truth_lead, clim_lead = (
        as_lead_fields(ds.sel(lead_hours=ERA5_LEAD)) for ds in (forecast, truth, clim))
    report("score_era5_lead",
           lambda: score_era5_lead(forecast_lead, truth_lead, clim_lead, ERA5_LEAD), repeat)
    report("xarray metric functions", lambda: xarray_metrics(forecast, truth, clim),
           max(1, repeat // 3))


def bench_day1(nlat: int, nlon: int, repeat: int) -> None:
    forecast, reference, clim = world(nlat, nlon, DAY1_LEADS, (500, 850))
    print(f"day-1, 6 fields x {len(DAY1_LEADS)} leads at {nlat}x{nlon}")
    report("score_day1", lambda: score_day1(forecast, reference, clim), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--nlat", type=int, default=721)
    parser.add_argument("--nlon", type=int, default=1440)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    bench_era5(args.nlat, args.nlon, args.repeat)
    bench_day1(args.nlat, args.nlon, args.repeat)


if __name__ == "__main__":
    main()

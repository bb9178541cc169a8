"""ERA5 1990-2019 climatology in the WeatherBench2 layout, selected at valid times.

The store (zarr v2, consolidated) has dims (hour, dayofyear, [level,] latitude,
longitude) with hour 0/6/12/18 and dayofyear 1..366 and ARCO variable names. A valid time
maps to its own calendar day of year (as ``time.dt.dayofyear`` does when WB2 builds the
climatology): 29 February is day 60 of a leap year and 31 December of a leap year is 366.
Synchronous and lazy, like ``Era5Source``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.canonical import to_naive_utc
from gaia.tasks.defined_tasks.weather.data.era5 import select_canonical
from gaia.tasks.defined_tasks.weather.data.zarr_http import open_zarr_url

DEFAULT_URL = (
    "https://storage.googleapis.com/weatherbench2/datasets/era5-hourly-climatology/"
    "1990-2019_6h_1440x721.zarr"
)


class ClimatologySource:
    """Canonical climatology for given valid times (time dim = those times)."""

    def __init__(self, url: str = DEFAULT_URL):
        self.url = url.rstrip("/")
        self._ds: xr.Dataset | None = None

    @property
    def dataset(self) -> xr.Dataset:
        if self._ds is None:
            self._ds = open_zarr_url(self.url)
        return self._ds

    def _indexers(self, valid_times: Sequence[datetime]) -> tuple[xr.DataArray, xr.DataArray]:
        index = to_naive_utc(valid_times)
        doys = np.asarray(index.day_of_year, dtype=np.int64)
        hours = np.asarray(index.hour, dtype=np.int64)
        have_h = set(self.dataset["hour"].values.tolist())
        have_d = set(self.dataset["dayofyear"].values.tolist())
        bad = [t.isoformat() for t, h, d in zip(valid_times, hours, doys, strict=True)
               if h not in have_h or d not in have_d or t.minute or t.second]
        if bad:
            raise KeyError(
                f"climatology at {self.url} has no (hour, dayofyear) for {bad}; "
                f"hours {sorted(have_h)}, days {min(have_d)}..{max(have_d)}"
            )
        return (xr.DataArray(hours, dims="time"), xr.DataArray(doys, dims="time"))

    def for_times(
        self, valid_times: Sequence[datetime], *, variables: Sequence[str] | None = None,
        levels: Sequence[int] | None = None,
    ) -> xr.Dataset:
        """Climatology at each valid time's day of year and hour (lazy)."""
        hours, doys = self._indexers(valid_times)
        picked = self.dataset.sel(hour=hours, dayofyear=doys)
        picked = picked.drop_vars(["hour", "dayofyear"]).assign_coords(
            time=("time", to_naive_utc(valid_times))
        )
        out = select_canonical(picked, variables, levels)
        order = [d for d in ("time", "level", "latitude", "longitude") if d in out.dims]
        return out.transpose(*order).assign_attrs(source="climatology")

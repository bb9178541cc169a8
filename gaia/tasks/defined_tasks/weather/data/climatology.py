"""ERA5 1990-2019 climatology in the WeatherBench2 layout, selected at valid times.

The store (zarr v2, consolidated) has dims (hour, dayofyear, [level,] latitude,
longitude) with hour 0/6/12/18 and dayofyear 1..366 and ARCO variable names. A valid time
maps to its own calendar day of year (as ``time.dt.dayofyear`` does when WB2 builds the
climatology): 29 February is day 60 of a leap year and 31 December of a leap year is 366.
Synchronous, like ``Era5Source``; unlike it, ``for_times`` reads the data before it
returns.

It reads with one *basic* selection per valid time (scalar hour and day of year) over only
the variables and levels asked for, and stacks the results along time. Selecting with two
arrays on one new ``time`` dimension instead makes xarray build a vectorised (pointwise)
indexer, which zarr walks element by element: tens of seconds and gigabytes of index arrays
for one 0.25° read, for the same values. (ERA5's ``sel(time=[...])`` is an orthogonal
selection, which zarr reads chunk by chunk, so it can stay lazy.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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

    def _keys(self, valid_times: Sequence[datetime]) -> list[tuple[int, int]]:
        """(hour, day of year) of each valid time; ``KeyError`` for one the store lacks."""
        index = to_naive_utc(valid_times)
        keys = [(int(h), int(d)) for h, d in zip(index.hour, index.day_of_year, strict=True)]
        have_h = set(self.dataset["hour"].values.tolist())
        have_d = set(self.dataset["dayofyear"].values.tolist())
        bad = [t.isoformat() for t, (h, d) in zip(valid_times, keys, strict=True)
               if h not in have_h or d not in have_d or t.minute or t.second]
        if bad:
            raise KeyError(
                f"climatology at {self.url} has no (hour, dayofyear) for {bad}; "
                f"hours {sorted(have_h)}, days {min(have_d)}..{max(have_d)}"
            )
        return keys

    def for_times(
        self, valid_times: Sequence[datetime], *, variables: Sequence[str] | None = None,
        levels: Sequence[int] | None = None,
    ) -> xr.Dataset:
        """Climatology at each valid time's day of year and hour, read now."""
        keys = self._keys(valid_times)
        fields = select_canonical(self.dataset, variables, levels)
        picked = xr.concat(
            [fields.sel(hour=hour, dayofyear=day).drop_vars(["hour", "dayofyear"]).load()
             for hour, day in keys],
            dim="time", data_vars="all", coords="minimal", compat="override", join="exact",
        ).assign_coords(time=("time", to_naive_utc(valid_times)))
        order = [d for d in ("time", "level", "latitude", "longitude") if d in picked.dims]
        return picked.transpose(*order).assign_attrs(source="climatology")

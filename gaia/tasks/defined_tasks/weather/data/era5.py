"""ERA5 truth from an analysis-ready zarr store (Google's ARCO ERA5 by default).

The store is zarr v2 with consolidated metadata, ARCO variable names, dims (time, level,
latitude, longitude), descending latitude and hourly (or 6-hourly) time, padded past the
data: the root attrs ``valid_time_start`` / ``valid_time_stop`` say where data really is.
``Era5Source`` is synchronous (zarr reads run on zarr's own event loop); from async code
call it through ``asyncio.to_thread``. Selection is lazy: only the chunks of the
requested times, variables and levels are read, when the result is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.canonical import to_naive_utc
from gaia.tasks.defined_tasks.weather.data.zarr_http import open_zarr_url, read_root_attrs
from gaia.tasks.defined_tasks.weather.variables import (
    ALL_VARIABLES,
    PRESSURE_LEVELS_HPA,
    UNITS,
    is_level_variable,
)

DEFAULT_URL = (
    "https://storage.googleapis.com/gcp-public-data-arco-era5/ar/"
    "full_37-1h-0p25deg-chunk-1.zarr-v3"
)

# canonical name -> (ARCO / WeatherBench2 name, variable attrs as the real store has them)
LEXICON: dict[str, tuple[str, dict[str, str]]] = {
    "2t": ("2m_temperature", {"long_name": "2 metre temperature", "short_name": "t2m",
                              "units": "K"}),
    "10u": ("10m_u_component_of_wind", {"long_name": "10 metre U wind component",
                                        "short_name": "u10", "units": "m s**-1"}),
    "10v": ("10m_v_component_of_wind", {"long_name": "10 metre V wind component",
                                        "short_name": "v10", "units": "m s**-1"}),
    "msl": ("mean_sea_level_pressure", {"long_name": "Mean sea level pressure",
                                        "short_name": "msl", "units": "Pa",
                                        "standard_name": "air_pressure_at_mean_sea_level"}),
    "t": ("temperature", {"long_name": "Temperature", "short_name": "t",
                          "standard_name": "air_temperature", "units": "K"}),
    "u": ("u_component_of_wind", {"long_name": "U component of wind", "short_name": "u",
                                  "standard_name": "eastward_wind", "units": "m s**-1"}),
    "v": ("v_component_of_wind", {"long_name": "V component of wind", "short_name": "v",
                                  "standard_name": "northward_wind", "units": "m s**-1"}),
    "q": ("specific_humidity", {"long_name": "Specific humidity", "short_name": "q",
                                "standard_name": "specific_humidity", "units": "kg kg**-1"}),
    "z": ("geopotential", {"long_name": "Geopotential", "short_name": "z",
                           "standard_name": "geopotential", "units": "m**2 s**-2"}),
}


class Era5NotAvailable(LookupError):
    """Requested valid times lie outside the store's data range (not published yet)."""


def select_canonical(
    ds: xr.Dataset, variables: Sequence[str] | None, levels: Sequence[int] | None
) -> xr.Dataset:
    """Rename ARCO/WB2 variables to canonical names, pick variables and levels (lazy)."""
    names = list(variables) if variables is not None else list(ALL_VARIABLES)
    unknown = [n for n in names if n not in LEXICON]
    if unknown:
        raise KeyError(f"unknown variables {unknown}; known: {list(LEXICON)}")
    missing = [LEXICON[n][0] for n in names if LEXICON[n][0] not in ds]
    if missing:
        raise KeyError(f"store has no variables {missing}")
    out = ds[[LEXICON[n][0] for n in names]].rename({LEXICON[n][0]: n for n in names})
    if "level" in out.dims:
        wanted = list(levels) if levels is not None else list(PRESSURE_LEVELS_HPA)
        absent = sorted(set(wanted) - {int(v) for v in out["level"].values})
        if absent:
            raise KeyError(f"store has no levels {absent} hPa")
        out = out.sel(level=wanted)
    for name in names:
        out[name].attrs = {"units": UNITS[name]}
        if not is_level_variable(name) and "level" in out[name].dims:
            raise ValueError(f"{name} unexpectedly has a level dimension")
    return out


def _attr_time(text: str, *, end_of_day: bool) -> datetime:
    """A ``valid_time_*`` attr; a bare date means the whole day (00:00 or 23:00)."""
    stamp = pd.Timestamp(text)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if end_of_day and len(text.strip()) == 10:
        stamp += pd.Timedelta(hours=23)
    return stamp.to_pydatetime()


def _time_at(ds: xr.Dataset, index: int) -> datetime:
    return pd.Timestamp(ds["time"].values[index]).tz_localize("UTC").to_pydatetime()


class Era5Source:
    """Canonical ERA5 truth at given valid times; sync, lazy."""

    def __init__(self, url: str = DEFAULT_URL):
        self.url = url.rstrip("/")
        self._ds: xr.Dataset | None = None

    @property
    def dataset(self) -> xr.Dataset:
        """The raw store, opened once (consolidated metadata, one request)."""
        if self._ds is None:
            self._ds = open_zarr_url(self.url)
        return self._ds

    def available_until(self) -> datetime:
        """The last valid time with data (root attr ``valid_time_stop``, else last time).

        Read fresh from the store's ``.zattrs`` on every call: the real store moves it daily,
        and a long-running validator must see that without reopening the whole store."""
        stop = read_root_attrs(self.url).get("valid_time_stop")
        return _attr_time(str(stop), end_of_day=True) if stop else _time_at(self.dataset, -1)

    def available_from(self) -> datetime:
        """The first valid time with data (``valid_time_start``, else first time)."""
        start = self.dataset.attrs.get("valid_time_start")
        return _attr_time(str(start), end_of_day=False) if start else _time_at(self.dataset, 0)

    def truth(
        self, valid_times: Sequence[datetime], *, variables: Sequence[str] | None = None,
        levels: Sequence[int] | None = None,
    ) -> xr.Dataset:
        """Canonical truth at ``valid_times`` (lazy; ``.load()`` reads the chunks).

        Raises ``Era5NotAvailable`` if any time is outside the data range and
        ``KeyError`` if a time is not on the store's time axis.
        """
        index = to_naive_utc(valid_times)  # refuses naive datetimes
        first, until = self.available_from(), self.available_until()
        late = [t for t in valid_times if not first <= t <= until]
        if late:
            raise Era5NotAvailable(
                f"ERA5 at {self.url} has data {first.isoformat()}..{until.isoformat()}; "
                f"not for {[t.isoformat() for t in late]}"
            )
        try:
            selected = self.dataset.sel(time=index)
        except KeyError as exc:
            raise KeyError(f"valid times not on the store's time axis: {exc}") from exc
        return select_canonical(selected, variables, levels).assign_attrs(source="era5")

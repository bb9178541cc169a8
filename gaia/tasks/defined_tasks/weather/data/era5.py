"""ERA5 truth from an analysis-ready zarr store (Google's ARCO ERA5 by default).

The store is zarr v2 with consolidated metadata, ARCO variable names, dims (time, level,
latitude, longitude), descending latitude and hourly (or 6-hourly) time, padded past the
data: the root attrs ``valid_time_start`` / ``valid_time_stop`` say where data really is.
``Era5Source`` is synchronous (zarr reads run on zarr's own event loop); from async code
call it through ``asyncio.to_thread``.

``read_fields`` gives one valid time's fields as :class:`LeadFields`, reading each ARCO
chunk (one variable at one time, all levels) once and keeping only the levels asked for;
``chunks`` / ``read_chunk`` expose that unit to the reference cache.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pandas as pd
import zarr
from xarray.coding.times import decode_cf_datetime

from gaia.config import ARCO_ERA5
from gaia.tasks.defined_tasks.weather.data.canonical import to_naive_utc
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.data.lead_fields import FieldKey, LeadFields
from gaia.tasks.defined_tasks.weather.data.zarr_fields import (
    SourceChunk,
    by_variable,
    child_array,
    group_grid,
    level_indices,
    open_group,
    read_chunk,
    split_by_chunk,
    store_array,
)
from gaia.tasks.defined_tasks.weather.data.zarr_http import read_root_attrs

# chunks read at once by read_fields: 4 ARCO chunks of all 37 levels are ~600 MB decoded
READ_THREADS = 4

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


def _attr_time(text: str, *, end_of_day: bool) -> datetime:
    """A ``valid_time_*`` attr; a bare date means the whole day (00:00 or 23:00)."""
    stamp = pd.Timestamp(text)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if end_of_day and len(text.strip()) == 10:
        stamp += pd.Timedelta(hours=23)
    return stamp.to_pydatetime()


def _time_at(times: pd.DatetimeIndex, index: int) -> datetime:
    return pd.Timestamp(times[index]).tz_localize("UTC").to_pydatetime()


def read_all(group: zarr.Group, grid: Grid, chunks: Sequence[SourceChunk],
             entry: Hashable) -> LeadFields:
    """``entry``'s fields from ``chunks``, a few chunks at a time (each read once)."""
    values: dict[FieldKey, object] = {}
    with ThreadPoolExecutor(READ_THREADS) as pool:
        for blocks in pool.map(lambda chunk: read_chunk(group, chunk), chunks):
            values.update(blocks[entry])
    return LeadFields(grid, values)  # type: ignore[arg-type]


class Era5Source:
    """Canonical ERA5 truth at given valid times; sync, opened on first use."""

    def __init__(self, url: str = ARCO_ERA5):
        self.url = url.rstrip("/")
        self._group: zarr.Group | None = None
        self._times: pd.DatetimeIndex | None = None
        self._grid: Grid | None = None

    @property
    def group(self) -> zarr.Group:
        """The raw zarr group, opened once; what ``read_fields`` reads from."""
        if self._group is None:
            self._group = open_group(self.url)
        return self._group

    @property
    def times(self) -> pd.DatetimeIndex:
        """The store's (padded) time axis, decoded once, naive UTC."""
        if self._times is None:
            axis = child_array(self.group, "time")
            units, calendar = axis.attrs["units"], axis.attrs.get("calendar")
            decoded = decode_cf_datetime(axis[:], str(units),
                                         None if calendar is None else str(calendar))
            self._times = pd.DatetimeIndex(decoded)
        return self._times

    @property
    def grid(self) -> Grid:
        if self._grid is None:
            self._grid = group_grid(self.group)
        return self._grid

    def available_until(self) -> datetime:
        """The last valid time with data (root attr ``valid_time_stop``, else last time).

        Read fresh from the store's ``.zattrs`` on every call: the real store moves it daily,
        and a long-running validator must see that without reopening the whole store."""
        stop = read_root_attrs(self.url).get("valid_time_stop")
        return _attr_time(str(stop), end_of_day=True) if stop else _time_at(self.times, -1)

    def available_from(self) -> datetime:
        """The first valid time with data (``valid_time_start``, else first time)."""
        start = self.group.attrs.get("valid_time_start")
        return _attr_time(str(start), end_of_day=False) if start else _time_at(self.times, 0)

    def read_fields(self, valid_time: datetime, keys: Sequence[FieldKey]) -> LeadFields:
        """The fields ``keys`` at ``valid_time``, read now, each chunk once.

        Raises ``Era5NotAvailable`` outside the data range, ``KeyError`` for an unknown or
        absent variable or level and for a time not on the store's time axis."""
        return read_all(self.group, self.grid, self.chunks(valid_time, keys), valid_time)

    def chunks(self, valid_time: datetime, keys: Sequence[FieldKey]) -> list[SourceChunk]:
        """The store chunks holding ``keys`` at ``valid_time`` (checked as ``read_fields``
        does); each is read by :meth:`read_chunk` as ``{valid_time: fields}``."""
        wanted = by_variable(keys, LEXICON)
        self._check_available([valid_time])
        index = self._time_index(valid_time)
        stamp = f"{valid_time:%Y%m%dT%H%M}"
        out: list[SourceChunk] = []
        for variable, levels in wanted.items():
            name = LEXICON[variable][0]
            level = levels != [None]
            array = store_array(self.group, name, ("time",), level)
            if not level:
                out.append(SourceChunk(f"{stamp}.{name}", name, (index,), (valid_time,),
                                       ((variable, None),), None))
                continue
            rows = level_indices(self.group, [int(v) for v in levels if v is not None])
            by_row = dict(zip(rows, levels, strict=True))
            for part, members in split_by_chunk(sorted(rows), array.chunks[1]).items():
                out.append(SourceChunk(
                    f"{stamp}.{name}.{part}", name, (index,), (valid_time,),
                    tuple((variable, by_row[row]) for row in members), tuple(members)))
        return out

    def read_chunk(self, chunk: SourceChunk) -> dict[Hashable, LeadFields]:
        """One chunk from :meth:`chunks`, read once: ``{valid_time: its fields}``."""
        return {entry: LeadFields(self.grid, values)
                for entry, values in read_chunk(self.group, chunk).items()}

    def _check_available(self, valid_times: Sequence[datetime]) -> None:
        to_naive_utc(valid_times)  # refuses naive datetimes
        first, until = self.available_from(), self.available_until()
        late = [t for t in valid_times if not first <= t <= until]
        if late:
            raise Era5NotAvailable(
                f"ERA5 at {self.url} has data {first.isoformat()}..{until.isoformat()}; "
                f"not for {[t.isoformat() for t in late]}"
            )

    def _time_index(self, valid_time: datetime) -> int:
        naive = to_naive_utc([valid_time])[0]
        try:
            return int(self.times.get_loc(naive))
        except KeyError as exc:
            raise KeyError(f"valid times not on the store's time axis: {exc}") from exc

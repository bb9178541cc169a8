"""ERA5 1990-2019 climatology in the WeatherBench2 layout, selected at valid times.

The store (zarr v2, consolidated) has dims (hour, dayofyear, [level,] latitude,
longitude) with hour 0/6/12/18 and dayofyear 1..366 and ARCO variable names. A valid time
maps to its own calendar day of year (as ``time.dt.dayofyear`` does when WB2 builds the
climatology): 29 February is day 60 of a leap year and 31 December of a leap year is 366.
Synchronous, like ``Era5Source``; it reads the data before it returns.

``read_fields`` reads one valid time's fields straight from zarr: per chunk it touches (one
field's 3 hours x 3 days in the real store), one selection with a scalar hour and day of
year over only the levels asked for. ``chunks`` / ``read_chunk`` give the reference cache
the whole chunk instead: every (hour, day of year) it holds, since later leads and the next
days' runs need them and the chunk is fetched and decoded whole anyway. Reads go straight to
zarr, not through xarray: selecting many valid times with two arrays on one new ``time``
dimension makes xarray build a vectorised (pointwise) indexer, which zarr walks element by
element: tens of seconds and gigabytes of index arrays for one 0.25° read, for the same
values.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime

import zarr

from gaia.config import WB2_CLIMATOLOGY
from gaia.tasks.defined_tasks.weather.data.canonical import to_naive_utc
from gaia.tasks.defined_tasks.weather.data.era5 import LEXICON, read_all
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.data.lead_fields import FieldKey, LeadFields
from gaia.tasks.defined_tasks.weather.data.zarr_fields import (
    SourceChunk,
    axis_values,
    by_variable,
    group_grid,
    level_indices,
    open_group,
    read_chunk,
    split_by_chunk,
    store_array,
)

LEAD_DIMS = ("hour", "dayofyear")
ClimKey = tuple[int, int]  # (hour, day of year)


def climatology_key(valid_time: datetime) -> ClimKey:
    """(hour, day of year) of ``valid_time``, by the rule in the module docstring;
    ``KeyError`` for a time between hours (the store has whole hours only)."""
    index = to_naive_utc([valid_time])
    if valid_time.minute or valid_time.second or valid_time.microsecond:
        raise KeyError(f"climatology has no (hour, dayofyear) for {valid_time.isoformat()}")
    return int(index.hour[0]), int(index.day_of_year[0])


def _chunk_span(index: int, chunk: int, size: int) -> slice:
    """The slice of the chunk (of ``chunk`` rows along an axis of ``size``) holding ``index``."""
    start = index - index % chunk
    return slice(start, min(start + chunk, size))


class ClimatologySource:
    """Canonical climatology at valid times' (hour, day of year); sync, opened on first use."""

    def __init__(self, url: str = WB2_CLIMATOLOGY):
        self.url = url.rstrip("/")
        self._group: zarr.Group | None = None
        self._axes: tuple[list[int], list[int]] | None = None
        self._grid: Grid | None = None

    @property
    def group(self) -> zarr.Group:
        if self._group is None:
            self._group = open_group(self.url)
        return self._group

    @property
    def grid(self) -> Grid:
        if self._grid is None:
            self._grid = group_grid(self.group)
        return self._grid

    def read_fields(self, valid_time: datetime, keys: Sequence[FieldKey]) -> LeadFields:
        """The fields ``keys`` at ``valid_time``'s (hour, day of year), each chunk read once;
        ``KeyError`` for an unknown or absent variable, level or (hour, day of year)."""
        key = climatology_key(valid_time)
        point = tuple(self._index(key))
        chunks = [SourceChunk(c.name, c.array, point, (key,), c.fields, c.levels)
                  for c in self.chunks(valid_time, keys)]
        return read_all(self.group, self.grid, chunks, key)

    def chunks(self, valid_time: datetime, keys: Sequence[FieldKey]) -> list[SourceChunk]:
        """The store chunks holding ``keys`` at ``valid_time``'s (hour, day of year), each
        with every (hour, day of year) it holds as its entries."""
        wanted = by_variable(keys, LEXICON)
        hour, day = self._index(climatology_key(valid_time))
        out: list[SourceChunk] = []
        for variable, levels in wanted.items():
            name = LEXICON[variable][0]
            level = levels != [None]
            array = store_array(self.group, name, LEAD_DIMS, level)
            hours, days = (_chunk_span(at, size, n) for at, size, n in
                           zip((hour, day), array.chunks, array.shape, strict=False))
            entries = self._entries(hours, days)
            tag = f"{name}.{hour // array.chunks[0]}.{day // array.chunks[1]}"
            if not level:
                out.append(SourceChunk(tag, name, (hours, days), entries, ((variable, None),), None))
                continue
            rows = level_indices(self.group, [int(v) for v in levels if v is not None])
            by_row = dict(zip(rows, levels, strict=True))
            for part, members in split_by_chunk(sorted(rows), array.chunks[2]).items():
                out.append(SourceChunk(
                    f"{tag}.{part}", name, (hours, days), entries,
                    tuple((variable, by_row[row]) for row in members), tuple(members)))
        return out

    def read_chunk(self, chunk: SourceChunk) -> dict[Hashable, LeadFields]:
        """One chunk from :meth:`chunks`, read once: ``{(hour, day of year): its fields}``."""
        return {entry: LeadFields(self.grid, values)
                for entry, values in read_chunk(self.group, chunk).items()}

    def _axes_values(self) -> tuple[list[int], list[int]]:
        if self._axes is None:
            self._axes = ([int(v) for v in axis_values(self.group, "hour")],
                          [int(v) for v in axis_values(self.group, "dayofyear")])
        return self._axes

    def _index(self, key: ClimKey) -> tuple[int, int]:
        hours, days = self._axes_values()
        if key[0] not in hours or key[1] not in days:
            raise KeyError(
                f"climatology at {self.url} has no (hour, dayofyear) {key}; "
                f"hours {hours}, days {min(days)}..{max(days)}"
            )
        return hours.index(key[0]), days.index(key[1])

    def _entries(self, hours: slice, days: slice) -> tuple[ClimKey, ...]:
        """The (hour, day of year) values of a chunk's rows, hour-major like the block."""
        hour_values, day_values = self._axes_values()
        return tuple((hour_values[h], day_values[d]) for h in range(hours.start, hours.stop)
                     for d in range(days.start, days.stop))

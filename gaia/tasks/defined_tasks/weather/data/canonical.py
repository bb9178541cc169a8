"""Assembling decoded fields into the canonical dataset form shared by every source.

Canonical: variables ``2t, 10u, 10v, msl`` (time, latitude, longitude) and ``t, u, v, q,
z`` (time, level, latitude, longitude), level in hPa ascending, SI units, longitude 0..360,
latitude in the source's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.gfs_idx import FieldKey
from gaia.tasks.defined_tasks.weather.data.grib import DecodedField, GfsDecodeError
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.variables import (
    ALL_VARIABLES,
    PRESSURE_LEVELS_HPA,
    UNITS,
    is_level_variable,
)


def to_naive_utc(times: Sequence[datetime]) -> pd.DatetimeIndex:
    """Timezone-aware UTC datetimes as the naive datetime64 index xarray stores."""
    index = pd.DatetimeIndex(list(times))
    if index.tz is None:
        raise ValueError("datetimes must be timezone-aware UTC")
    return index.tz_convert("UTC").tz_localize(None).as_unit("ns")


class FieldAssembler:
    """Copies decoded fields into canonical arrays as they arrive (low peak memory).

    ``keys`` fixes the variables and levels; arrays are allocated (NaN) when the first
    field shows the grid; every later field must be on the same grid.
    """

    def __init__(self, keys: Sequence[FieldKey], times: Sequence[datetime]):
        self._index = to_naive_utc(times)
        self._position = {t: i for i, t in enumerate(self._index)}
        self._names = [n for n in ALL_VARIABLES if any(k[0] == n for k in keys)]
        self._levels = [lv for lv in PRESSURE_LEVELS_HPA if any(k[1] == lv for k in keys)]
        self._grid: Grid | None = None
        self._arrays: dict[str, np.ndarray] = {}

    def _allocate(self, grid: Grid) -> None:
        self._grid = grid
        n_time = len(self._index)
        for name in self._names:
            shape = ((n_time, len(self._levels), *grid.shape) if is_level_variable(name)
                     else (n_time, *grid.shape))
            self._arrays[name] = np.full(shape, np.nan, dtype=np.float32)

    def add(self, field: DecodedField) -> None:
        if self._grid is None:
            self._allocate(field.grid)
        elif field.grid != self._grid:
            raise GfsDecodeError(f"field {field.key} is on grid {field.grid.to_dict()}, "
                                 f"others on {self._grid.to_dict()}")
        slot = self._position.get(to_naive_utc([field.valid_time])[0])
        name, level = field.key
        if slot is None or name not in self._arrays or (level is not None
                                                          and level not in self._levels):
            raise GfsDecodeError(f"field {field.key} valid at {field.valid_time} not requested")
        if level is None:
            self._arrays[name][slot] = field.values
        else:
            self._arrays[name][slot, self._levels.index(level)] = field.values

    def dataset(self) -> xr.Dataset:
        if self._grid is None:
            raise GfsDecodeError("no fields to assemble")
        return build_dataset(self._arrays, self._index, self._levels, self._grid)


def fields_to_dataset(fields: Sequence[DecodedField], times: Sequence[datetime]) -> xr.Dataset:
    """Stack decoded fields (any order) into a canonical dataset over ``times``.

    Every field's valid time must be one of ``times``; (variable, level, time) slots
    that no field fills are NaN.
    """
    assembler = FieldAssembler([f.key for f in fields], times)
    for field in fields:
        assembler.add(field)
    return assembler.dataset()


def build_dataset(
    arrays: dict[str, np.ndarray], times: pd.DatetimeIndex, levels: Sequence[int], grid: Grid
) -> xr.Dataset:
    """A canonical dataset from numpy arrays already in canonical dim order."""
    data_vars = {
        name: (
            ("time", "level", "latitude", "longitude") if is_level_variable(name)
            else ("time", "latitude", "longitude"),
            values,
            {"units": UNITS[name]},
        )
        for name, values in arrays.items()
    }
    coords: dict[str, object] = {"time": times, **grid_coords(grid)}
    if any(is_level_variable(n) for n in arrays):
        coords["level"] = ("level", np.asarray(levels, dtype=np.int64), {"units": "hPa"})
    return xr.Dataset(data_vars, coords=coords)


def grid_coords(grid: Grid) -> dict[str, object]:
    """The latitude and longitude coordinates every dataset of a source carries."""
    return {
        "latitude": ("latitude", grid.lat, {"units": "degrees_north"}),
        "longitude": ("longitude", grid.lon, {"units": "degrees_east"}),
    }

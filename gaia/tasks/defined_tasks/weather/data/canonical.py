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


def _one_grid(fields: Sequence[DecodedField]) -> Grid:
    grid = fields[0].grid
    for field in fields[1:]:
        if field.grid != grid:
            raise GfsDecodeError(
                f"field {field.key} is on grid {field.grid.to_dict()}, "
                f"others on {grid.to_dict()}"
            )
    return grid


def fields_to_dataset(fields: Sequence[DecodedField], times: Sequence[datetime]) -> xr.Dataset:
    """Stack decoded fields (any order) into a canonical dataset over ``times``.

    Every field's valid time must be one of ``times``; (variable, level, time) slots
    that no field fills are NaN.
    """
    if not fields:
        raise GfsDecodeError("no fields to assemble")
    grid = _one_grid(fields)
    index = to_naive_utc(times)
    position = {t: i for i, t in enumerate(index)}
    names = [n for n in ALL_VARIABLES if any(f.key[0] == n for f in fields)]
    levels = [lv for lv in PRESSURE_LEVELS_HPA if any(f.key[1] == lv for f in fields)]
    arrays = {
        name: np.full(
            (len(index), len(levels), *grid.shape) if is_level_variable(name)
            else (len(index), *grid.shape), np.nan, dtype=np.float32)
        for name in names
    }
    for field in fields:
        slot = position.get(to_naive_utc([field.valid_time])[0])
        if slot is None:
            raise GfsDecodeError(f"field {field.key} valid at {field.valid_time} not requested")
        name, level = field.key
        if level is None:
            arrays[name][slot] = field.values
        else:
            arrays[name][slot, levels.index(level)] = field.values
    return build_dataset(arrays, index, levels, grid)


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
    coords: dict[str, object] = {
        "time": times,
        "latitude": ("latitude", grid.lat, {"units": "degrees_north"}),
        "longitude": ("longitude", grid.lon, {"units": "degrees_east"}),
    }
    if any(is_level_variable(n) for n in arrays):
        coords["level"] = ("level", np.asarray(levels, dtype=np.int64), {"units": "hPa"})
    return xr.Dataset(data_vars, coords=coords)

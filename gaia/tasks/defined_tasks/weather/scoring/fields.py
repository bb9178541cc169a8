"""Getting 2-D fields out of canonical datasets, on a common grid, without copies.

Canonical datasets (``data/``) hold surface variables with dims (…, latitude, longitude)
and level variables with dims (…, level, latitude, longitude), level in hPa, longitudes
0..360 and latitudes in either order. Scoring brings every input to the truth's latitude
order with a reversed view; any other grid difference is a ``GridMismatch`` (data/grid.py).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.grid import Grid, GridMismatch, check_forecast_grid
from gaia.tasks.defined_tasks.weather.scoring.metrics import LAT, LON

__all__ = ["LEAD_DIM", "FieldTable", "GridMismatch", "align_grid", "with_lead_hours"]

LEAD_DIM = "lead_hours"


def align_grid(dataset: xr.Dataset, target: xr.Dataset, name: str) -> xr.Dataset:
    """``dataset`` in ``target``'s latitude order (a view); raise if the grids differ.

    The comparison is :func:`~gaia.tasks.defined_tasks.weather.data.grid.check_forecast_grid`
    plus equal shapes: callers that accept a forecast without pole rows bring the truth to
    the forecast's grid first (``align_truth_to_forecast``).
    """
    try:
        grid, target_grid = Grid.from_dataset(dataset), Grid.from_dataset(target)
        check_forecast_grid(grid, target_grid)
    except GridMismatch as mismatch:
        raise GridMismatch(f"{name}: {mismatch}") from mismatch
    if grid.shape != target_grid.shape:
        raise GridMismatch(f"{name} has no pole rows: bring the truth to its grid first")
    if grid.descending != target_grid.descending:
        dataset = dataset.isel({LAT: slice(None, None, -1)})
    return dataset.assign_coords({LAT: target[LAT], LON: target[LON]})


class FieldTable:
    """numpy views of a dataset's fields by (variable, level), each variable read once.

    ``get`` returns the (…, latitude, longitude) array of one field, or None when the
    variable or level is absent. Views, not copies: the dataset's memory is shared.
    """

    def __init__(self, dataset: xr.Dataset) -> None:
        self._dataset = dataset
        self._cache: dict[str, tuple[np.ndarray, np.ndarray | None] | None] = {}

    def get(self, variable: str, level: int | None) -> np.ndarray | None:
        if variable not in self._cache:
            self._cache[variable] = self._read(variable)
        entry = self._cache[variable]
        if entry is None:
            return None
        values, levels = entry
        if level is None:
            if levels is not None:
                raise ValueError(f"variable {variable!r} has a level dim; give a level")
            return values
        if levels is None:
            raise ValueError(f"surface variable {variable!r} has no level {level}")
        matches = np.flatnonzero(levels == level)
        return values[..., int(matches[0]), :, :] if matches.size else None

    def _read(self, variable: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        if variable not in self._dataset.data_vars:
            return None
        data = self._dataset[variable]
        if "level" in data.dims:
            values = data.transpose(..., "level", LAT, LON).to_numpy()
            return values, data["level"].to_numpy()
        return data.transpose(..., LAT, LON).to_numpy(), None


def squeeze_singletons(dataset: xr.Dataset) -> xr.Dataset:
    """Drop size-1 ``time`` or ``lead_hours`` dims (one lead's fields become 2-D/3-D)."""
    dims = [dim for dim in ("time", LEAD_DIM) if dataset.sizes.get(dim) == 1]
    return dataset.isel({dim: 0 for dim in dims}) if dims else dataset


def with_lead_hours(dataset: xr.Dataset, init_time: datetime | np.datetime64) -> xr.Dataset:
    """Replace a valid-time ``time`` dim by ``lead_hours`` (int hours since ``init_time``)."""
    init = pd.Timestamp(init_time)
    if init.tzinfo is not None:
        init = init.tz_convert("UTC").tz_localize(None)
    leads = (dataset["time"].to_numpy() - init.to_datetime64()) / np.timedelta64(1, "h")
    if not np.allclose(leads, np.round(leads)):
        raise ValueError("valid times are not whole hours after the init time")
    return dataset.assign_coords(time=leads.round().astype(int)).rename(time=LEAD_DIM)

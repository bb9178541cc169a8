"""Getting 2-D fields out of canonical datasets, on a common grid, without copies.

Canonical datasets (``data/``) hold surface variables with dims (…, latitude, longitude)
and level variables with dims (…, level, latitude, longitude), level in hPa, longitudes
0..360 and latitudes in either order. Scoring brings every input to the truth's latitude
order with a reversed view; any other grid difference is a :class:`GridMismatch`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from gaia.tasks.defined_tasks.weather.scoring.metrics import LAT, LON

LEAD_DIM = "lead_hours"
_GRID_TOLERANCE_DEG = 1e-6


class GridMismatch(ValueError):
    """Two inputs are not on the same latitude/longitude grid."""


def align_grid(dataset: xr.Dataset, target: xr.Dataset, name: str) -> xr.Dataset:
    """``dataset`` in ``target``'s latitude order (a view); raise if the grids differ."""
    for dim in (LAT, LON):
        if dim not in dataset.coords or dim not in target.coords:
            raise GridMismatch(f"{name} has no {dim} coordinate")
    lat = dataset[LAT].to_numpy()
    target_lat = target[LAT].to_numpy()
    if lat.size > 1 and target_lat.size > 1 and (lat[1] - lat[0]) * (target_lat[1] - target_lat[0]) < 0:
        dataset = dataset.isel({LAT: slice(None, None, -1)})
        lat = lat[::-1]
    _require_same(lat, target_lat, f"{name} latitude")
    _require_same(dataset[LON].to_numpy(), target[LON].to_numpy(), f"{name} longitude")
    return dataset.assign_coords({LAT: target[LAT], LON: target[LON]})


def _require_same(values: np.ndarray, expected: np.ndarray, what: str) -> None:
    if values.shape != expected.shape:
        raise GridMismatch(f"{what}: {values.size} points, expected {expected.size}")
    if not np.allclose(values, expected, rtol=0.0, atol=_GRID_TOLERANCE_DEG):
        raise GridMismatch(f"{what} values differ from the reference grid")


def field_array(dataset: xr.Dataset, variable: str, level: int | None) -> np.ndarray | None:
    """The (…, latitude, longitude) array of one field, or None when it is absent."""
    if variable not in dataset.data_vars:
        return None
    data = dataset[variable]
    if level is not None:
        if "level" not in data.dims:
            raise ValueError(f"variable {variable!r} has no level dim; dims {data.dims}")
        matches = np.flatnonzero(data["level"].to_numpy() == level)
        if matches.size == 0:
            return None
        data = data.isel(level=int(matches[0]))
    elif "level" in data.dims:
        raise ValueError(f"surface variable {variable!r} has a level dim")
    return data.transpose(..., LAT, LON).to_numpy()


def squeeze_singletons(dataset: xr.Dataset) -> xr.Dataset:
    """Drop size-1 ``time`` or ``lead_hours`` dims (one lead's fields become 2-D/3-D)."""
    dims = [dim for dim in ("time", LEAD_DIM) if dataset.sizes.get(dim) == 1]
    return dataset.isel({dim: 0 for dim in dims}) if dims else dataset


def with_lead_hours(dataset: xr.Dataset, init_time: np.datetime64) -> xr.Dataset:
    """Replace a valid-time ``time`` dim by ``lead_hours`` (int hours since ``init_time``)."""
    leads = (dataset["time"].to_numpy() - np.datetime64(init_time, "ns")) / np.timedelta64(1, "h")
    if not np.allclose(leads, np.round(leads)):
        raise ValueError("valid times are not whole hours after the init time")
    return dataset.assign_coords(time=leads.round().astype(int)).rename(time=LEAD_DIM)

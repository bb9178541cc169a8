"""The contract between the miner and a forecast model.

A model receives :class:`ForecastInputs` (the canonical state at T0-6h and T0, checked
when built) and yields the forecast one lead at a time, so that a 0.25 degree forecast
never sits in memory whole::

    for lead_hours, state in model.forecast(inputs, FORECAST_LEAD_HOURS):
        writer.write_lead(lead_hours, state)

Each yielded ``state`` is a canonical dataset of one time (``time`` = T0 + lead).

A model that needs static fields (land-sea mask, orography, soil type) and has no file of
its own sets ``needs_gfs_statics = True``: the miner then fetches them from the cycle's GFS
f000 and hands them over in ``inputs.statics`` (see ``aurora_model.py``, the example of a
model that does).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.variables import (
    ALL_VARIABLES,
    LEAD_STEP_HOURS,
    PRESSURE_LEVELS_HPA,
    UNITS,
    is_level_variable,
)

INPUT_STEP = np.timedelta64(LEAD_STEP_HOURS, "h")


class InvalidInputs(ValueError):
    """The inputs handed to a model break the canonical form; the message says how."""


class ForecastModel(Protocol):
    """A forecast model: inputs in, one canonical state per lead out."""

    @property
    def name(self) -> str:
        """The name the model is registered under."""
        ...

    def forecast(
        self, inputs: ForecastInputs, lead_hours: Sequence[int]
    ) -> Iterator[tuple[int, xr.Dataset]]:
        """Yield ``(lead, state at T0 + lead)`` for each lead, in the order given."""
        ...


def wants_gfs_statics(model: object) -> bool:
    """Whether ``model`` asks for GFS's static fields (an optional ``needs_gfs_statics``)."""
    return getattr(model, "needs_gfs_statics", False) is True


def _dims_for(name: str) -> tuple[str, ...]:
    if is_level_variable(name):
        return ("time", "level", "latitude", "longitude")
    return ("time", "latitude", "longitude")


def _check_times(ds: xr.Dataset) -> np.datetime64:
    if "time" not in ds.coords:
        raise InvalidInputs("inputs have no 'time' coordinate")
    times = np.asarray(ds["time"].values, dtype="datetime64[ns]")
    if times.size != 2 or times[1] - times[0] != INPUT_STEP:
        raise InvalidInputs(
            f"inputs need exactly two times {LEAD_STEP_HOURS} h apart (T0-6h, T0), got {times}"
        )
    return times[1]


def _check_levels(ds: xr.Dataset) -> tuple[int, ...]:
    if "level" not in ds.coords:
        return ()
    levels = tuple(int(v) for v in np.asarray(ds["level"].values))
    unknown = sorted(set(levels) - set(PRESSURE_LEVELS_HPA))
    if unknown:
        raise InvalidInputs(f"unknown pressure levels {unknown} (hPa); known: {PRESSURE_LEVELS_HPA}")
    return levels


def _field(ds: xr.Dataset, name: str) -> np.ndarray:
    if name not in ALL_VARIABLES:
        raise InvalidInputs(f"unknown variable {name!r}; known: {', '.join(ALL_VARIABLES)}")
    dims = _dims_for(name)
    da = ds[name]
    if set(da.dims) != set(dims):
        raise InvalidInputs(f"variable {name!r} has dims {da.dims}, expected {dims}")
    values = np.asarray(da.transpose(*dims).values, dtype=np.float32)
    if not np.all(np.isfinite(values)):
        raise InvalidInputs(f"variable {name!r} holds NaN or infinite values")
    return values


def _statics(ds: xr.Dataset, grid: Grid) -> dict[str, np.ndarray]:
    if Grid.from_dataset(ds) != grid:
        raise InvalidInputs("the static fields are not on the grid of the inputs")
    arrays = {}
    for name in ds.data_vars:
        values = np.asarray(ds[name].transpose("latitude", "longitude").values, np.float32)
        if not np.all(np.isfinite(values)):
            raise InvalidInputs(f"static field {name!r} holds NaN or infinite values")
        arrays[str(name)] = values
    return arrays


@dataclass(frozen=True)
class ForecastInputs:
    """The two canonical input states; built only through :meth:`from_dataset`.

    ``fields`` maps each variable to a float32 array of shape (2, [level,] lat, lon),
    index 0 at T0-6h and index 1 at T0. ``statics`` (empty unless the model asked for them)
    maps each static field to a float32 (lat, lon) array on the same grid.
    """

    init_time: np.datetime64
    grid: Grid
    levels: tuple[int, ...]
    fields: Mapping[str, np.ndarray]
    statics: Mapping[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, statics: xr.Dataset | None = None) -> ForecastInputs:
        """Check ``ds`` (and ``statics``) against the canonical form; arrays as float32."""
        if not ds.data_vars:
            raise InvalidInputs("inputs hold no variables")
        init_time = _check_times(ds)
        levels = _check_levels(ds)
        grid = Grid.from_dataset(ds)
        fields = {str(name): _field(ds, str(name)) for name in ds.data_vars}
        static = _statics(statics, grid) if statics is not None else {}
        return cls(init_time=init_time, grid=grid, levels=levels, fields=fields, statics=static)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(self.fields)

    def state_dataset(self, lead_hours: int, arrays: Mapping[str, np.ndarray]) -> xr.Dataset:
        """A canonical dataset of one time (T0 + lead) from arrays shaped ([level,] lat, lon)."""
        coords: dict[str, object] = {
            "time": [self.init_time + np.timedelta64(lead_hours, "h")],
            "latitude": self.grid.lat,
            "longitude": self.grid.lon,
        }
        if self.levels:
            coords["level"] = np.asarray(self.levels, dtype=np.int64)
        data_vars = {
            name: (_dims_for(name), arrays[name][np.newaxis], {"units": UNITS[name]})
            for name in self.fields
        }
        return xr.Dataset(data_vars, coords=coords)

"""Aurora's static fields: land-sea mask ``lsm`` (0..1), surface geopotential ``z``
(m2 s-2) and soil type ``slt`` (ERA5's classes 0..7), on the grid of the inputs.

Two sources:

- A file the operator gives (``--aurora.statics``): Aurora's own release
  (``aurora-0.25-static.pickle``, ERA5-derived, what the published checkpoints were trained
  with) or a netCDF file with variables ``lsm``, ``z``, ``slt`` over ``latitude``/``longitude``.
  A pickle without coordinates is taken as a global grid, north to south, longitudes from 0.
  Pickles are read with an unpickler that builds numpy arrays and nothing else.
- Without a file, each cycle's GFS f000 (``LAND``, ``HGT``, ``SOTYP`` at the surface, through
  ``GfsSource.fetch_statics``): always on the inputs' grid, but GFS's land mask, orography
  and soil classes are not ERA5's (the soil classes are mapped by texture; see
  ``data/gfs_statics.py``), so a checkpoint sees statics a little unlike its training data.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.grid import Grid, GridMismatch

STATIC_NAMES = ("lsm", "z", "slt")
_NUMPY_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class StaticsError(ValueError):
    """A statics file that cannot be used; the message says why."""


@dataclass(frozen=True)
class StaticFields:
    """The three fields on one grid, float32 (lat, lon) in the grid's order."""

    grid: Grid
    fields: Mapping[str, np.ndarray]

    def on(self, grid: Grid) -> StaticFields:
        """These fields on ``grid`` (latitudes flipped if need be); another grid raises."""
        if self.grid.shape != grid.shape or not np.allclose(self.grid.lon, grid.lon):
            raise GridMismatch(
                f"static fields are on a {self.grid.shape[0]}x{self.grid.shape[1]} grid "
                f"({self.grid.resolution_deg:g} deg), the inputs on {grid.shape[0]}x"
                f"{grid.shape[1]} ({grid.resolution_deg:g} deg)"
            )
        if np.allclose(self.grid.lat, grid.lat):
            return self
        if np.allclose(self.grid.lat[::-1], grid.lat):
            return StaticFields(grid, {k: v[::-1] for k, v in self.fields.items()})
        raise GridMismatch("static fields and inputs have different latitudes")


def global_grid(shape: tuple[int, int]) -> Grid:
    """The global grid of ``shape``: poles included, north to south, longitudes from 0."""
    n_lat, n_lon = shape
    if (n_lat - 1) * 2 != n_lon:
        raise StaticsError(f"a {n_lat}x{n_lon} array without coordinates is no global grid")
    return Grid.regular(360.0 / n_lon)


def statics_from_dataset(ds: xr.Dataset) -> StaticFields:
    """Static fields from a dataset with ``lsm``, ``z``, ``slt`` over latitude/longitude."""
    missing = [name for name in STATIC_NAMES if name not in ds]
    if missing:
        raise StaticsError(f"no {', '.join(missing)} in the static fields")
    arrays = {
        name: np.asarray(ds[name].transpose("latitude", "longitude").values, dtype=np.float32)
        for name in STATIC_NAMES
    }
    return _checked(Grid.from_dataset(ds), arrays)


def _checked(grid: Grid, arrays: dict[str, np.ndarray]) -> StaticFields:
    for name, values in arrays.items():
        if values.shape != grid.shape:
            raise StaticsError(f"{name} has shape {values.shape}, the grid {grid.shape}")
        if not np.all(np.isfinite(values)):
            raise StaticsError(f"{name} holds NaN or infinite values")
    return StaticFields(grid, arrays)


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _NUMPY_GLOBALS:
            raise StaticsError(f"the pickle holds a {module}.{name}, not only numpy arrays")
        return super().find_class(module, name)


def _from_pickle(path: Path) -> StaticFields:
    loaded = _ArraysOnly(io.BytesIO(path.read_bytes())).load()
    if not isinstance(loaded, dict):
        raise StaticsError(f"the pickle holds a {type(loaded).__name__}, not a dict of arrays")
    missing = [name for name in STATIC_NAMES if name not in loaded]
    if missing:
        raise StaticsError(f"no {', '.join(missing)} in the pickle (it has {sorted(loaded)})")
    arrays = {name: np.asarray(loaded[name], dtype=np.float32) for name in STATIC_NAMES}
    shape = arrays["lsm"].shape
    if len(shape) != 2:
        raise StaticsError(f"lsm has shape {shape}, not (latitude, longitude)")
    return _checked(global_grid((shape[0], shape[1])), arrays)


def load_statics(path: Path) -> StaticFields:
    """The static fields of a ``.pickle``/``.pkl`` or netCDF file (StaticsError)."""
    try:
        if path.suffix in (".pickle", ".pkl"):
            return _from_pickle(path)
        with xr.open_dataset(path) as ds:
            return statics_from_dataset(ds.load())
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, KeyError) as error:
        if isinstance(error, StaticsError):
            raise
        raise StaticsError(f"cannot read {path}: {error}") from error

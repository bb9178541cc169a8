"""Weather-shaped synthetic states for tests and benchmarks (no physics, plausible shapes).

Every field is a latitude profile plus a few zonal waves that travel at their own
speeds and slowly change amplitude, so persistence is wrong by a realistic amount and a
model that tracks moving waves can beat it. States at any set of times are consistent
with each other (the same waves, evaluated at each time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.variables import (
    ALL_VARIABLES,
    PRESSURE_LEVELS_HPA,
    STANDARD_GRAVITY,
    UNITS,
    is_level_variable,
)

# (wavenumber, eastward speed in degrees of longitude per hour, relative amplitude)
WAVES: tuple[tuple[int, float, float], ...] = (
    (2, -0.05, 0.6), (4, 0.35, 0.8), (6, 0.5, 1.0), (9, 0.6, 0.5), (14, 0.7, 0.25),
)


def _standard_height_m(level_hpa: float) -> float:
    return 44330.8 * (1.0 - (level_hpa / 1013.25) ** 0.190263)


def _profile(name: str, level: float | None, lat: np.ndarray) -> tuple[np.ndarray, float]:
    """(mean value per latitude, wave amplitude) of one field."""
    coslat = np.cos(np.deg2rad(lat))
    p = 1000.0 if level is None else level
    if name in ("2t", "t"):
        surface = 245.0 + 50.0 * coslat**2
        return surface - 6.5e-3 * _standard_height_m(p), 4.0
    if name in ("10u", "u"):
        return 10.0 * np.sin(np.deg2rad(2 * lat)) ** 2 * (2.0 - p / 1000.0), 6.0
    if name in ("10v", "v"):
        return np.zeros_like(lat), 5.0
    if name == "msl":
        return 101325.0 - 800.0 * np.cos(np.deg2rad(3 * lat)), 900.0
    if name == "q":
        return 0.018 * coslat**3 * (p / 1000.0) ** 3 + 1e-6, 0.0
    if name == "z":
        return STANDARD_GRAVITY * (_standard_height_m(p) + 150.0 * coslat**2), 600.0
    raise KeyError(f"unknown variable {name!r}")


def _waves(lat: np.ndarray, lon: np.ndarray, hours: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    envelope = np.sin(np.deg2rad(lat)) ** 2 * np.cos(np.deg2rad(lat))
    field = np.zeros((lat.size, lon.size), dtype=np.float64)
    for k, speed, amplitude in WAVES:
        phase = rng.uniform(0, 2 * np.pi)
        tilt = rng.uniform(-0.05, 0.05)
        growth = 1.0 + 0.25 * np.sin(2 * np.pi * hours / rng.uniform(72, 240) + phase)
        angle = np.deg2rad(k * (lon[np.newaxis, :] - speed * hours)) + phase + tilt * lat[:, None]
        field += amplitude * growth * np.cos(angle)
    return field * envelope[:, np.newaxis]


def _field(name: str, level: float | None, grid: Grid, hours: float, seed: int) -> np.ndarray:
    lat, lon = grid.lat, grid.lon
    mean, amplitude = _profile(name, level, lat)
    values = mean[:, np.newaxis] + amplitude * _waves(lat, lon, hours, seed)
    if name == "q":
        values = values * (1.0 + 0.3 * _waves(lat, lon, hours, seed))
    return values.astype(np.float32)


def synthetic_state(
    grid: Grid,
    times: Sequence[np.datetime64],
    *,
    variables: Sequence[str] = ALL_VARIABLES,
    levels: Sequence[int] = PRESSURE_LEVELS_HPA,
    seed: int = 0,
) -> xr.Dataset:
    """A canonical dataset at ``times`` (the same travelling waves at every time)."""
    stamps = np.asarray(times, dtype="datetime64[ns]")
    hours = [float((t - stamps[0]) / np.timedelta64(1, "h")) for t in stamps]
    data_vars = {}
    for index, name in enumerate(variables):
        if is_level_variable(name):
            values = np.stack([
                np.stack([_field(name, lev, grid, h, seed + 31 * index + lev) for lev in levels])
                for h in hours
            ])
            dims: tuple[str, ...] = ("time", "level", "latitude", "longitude")
        else:
            values = np.stack([_field(name, None, grid, h, seed + 31 * index) for h in hours])
            dims = ("time", "latitude", "longitude")
        data_vars[name] = (dims, values, {"units": UNITS[name]})
    coords = {"time": stamps, "latitude": grid.lat, "longitude": grid.lon,
              "level": np.asarray(levels, dtype=np.int64)}
    return xr.Dataset(data_vars, coords=coords)

"""Regular latitude/longitude grids and the one place where two grids are compared.

A forecast must sit on the truth grid point for point (within ``GRID_TOLERANCE_DEG``).
The only difference allowed is missing pole rows (a forecast without +/-90); the
order of the latitudes (north-to-south or south-to-north) does not matter because
``align_truth_to_forecast`` reorders the truth. Anything else raises ``GridMismatch``
naming the difference: grids are never interpolated silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

GRID_TOLERANCE_DEG = 1e-6


class GridMismatch(ValueError):
    """Two grids (or a grid and its own invariants) disagree; the message names how."""


def _as_tuple(values: object) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())


def _spacing(values: np.ndarray, axis: str) -> float:
    steps = np.diff(values)
    step = float(steps[0])
    worst = float(np.max(np.abs(steps - step)))
    if worst > GRID_TOLERANCE_DEG * 10:
        raise GridMismatch(f"{axis} is not regularly spaced (step {step}, deviation {worst:g})")
    return step


@dataclass(frozen=True)
class Grid:
    """A regular lat/lon grid; longitudes ascending in [0, 360), latitudes monotonic.

    The constructor also accepts numpy arrays (stored as float64 tuples).
    """

    latitudes: tuple[float, ...]
    longitudes: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "latitudes", _as_tuple(self.latitudes))
        object.__setattr__(self, "longitudes", _as_tuple(self.longitudes))
        lat, lon = self.lat, self.lon
        if lat.size < 2 or lon.size < 2:
            raise GridMismatch(f"grid needs >= 2 latitudes and longitudes, got {lat.size}x{lon.size}")
        if np.any(np.abs(lat) > 90 + GRID_TOLERANCE_DEG):
            raise GridMismatch(f"latitudes outside [-90, 90]: {lat.min()}..{lat.max()}")
        if np.any(lon < -GRID_TOLERANCE_DEG) or np.any(lon >= 360 - GRID_TOLERANCE_DEG):
            raise GridMismatch(f"longitudes outside [0, 360): {lon.min()}..{lon.max()}")
        lat_step = _spacing(lat, "latitude")
        if lat_step == 0:
            raise GridMismatch("latitude is not strictly monotonic")
        if _spacing(lon, "longitude") <= 0:
            raise GridMismatch("longitude is not strictly ascending")

    @property
    def lat(self) -> np.ndarray:
        return np.asarray(self.latitudes, dtype=np.float64)

    @property
    def lon(self) -> np.ndarray:
        return np.asarray(self.longitudes, dtype=np.float64)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.latitudes), len(self.longitudes))

    @property
    def descending(self) -> bool:
        return self.latitudes[0] > self.latitudes[-1]

    @property
    def resolution_deg(self) -> float:
        return abs(self.longitudes[1] - self.longitudes[0])

    @property
    def has_poles(self) -> bool:
        ends = (abs(self.latitudes[0]), abs(self.latitudes[-1]))
        return all(abs(e - 90) <= GRID_TOLERANCE_DEG for e in ends)

    @classmethod
    def regular(cls, deg: float, descending: bool = True) -> Grid:
        """Global grid with poles, like GFS/ERA5: lat 90..-90, lon 0..360-deg."""
        n_lat = round(180 / deg) + 1
        n_lon = round(360 / deg)
        if abs(n_lon * deg - 360) > GRID_TOLERANCE_DEG or abs((n_lat - 1) * deg - 180) > 1e-6:
            raise GridMismatch(f"{deg} degrees does not divide the globe evenly")
        lat = np.linspace(90.0, -90.0, n_lat)
        lon = np.arange(n_lon, dtype=np.float64) * deg
        return cls(latitudes=_as_tuple(lat if descending else lat[::-1]), longitudes=_as_tuple(lon))

    @classmethod
    def from_dataset(cls, ds: xr.Dataset | xr.DataArray) -> Grid:
        """The grid of a dataset with ``latitude``/``longitude`` coordinates."""
        for name in ("latitude", "longitude"):
            if name not in ds.coords:
                raise GridMismatch(f"dataset has no {name!r} coordinate")
        lon = np.asarray(ds["longitude"].values, dtype=np.float64)
        return cls(latitudes=_as_tuple(ds["latitude"].values), longitudes=_as_tuple(np.mod(lon, 360)))

    def to_dict(self) -> dict[str, object]:
        """A compact JSON-able description (first/last/count per axis)."""
        return {
            "lat_first": self.latitudes[0], "lat_last": self.latitudes[-1], "n_lat": self.shape[0],
            "lon_first": self.longitudes[0], "lon_last": self.longitudes[-1],
            "n_lon": self.shape[1],
        }


def _first_difference(a: np.ndarray, b: np.ndarray) -> str:
    index = int(np.argmax(np.abs(a - b) > GRID_TOLERANCE_DEG))
    return f"index {index}: {float(a[index])!r} vs {float(b[index])!r}"


def _check_longitudes(forecast: Grid, truth: Grid) -> None:
    f, t = forecast.lon, truth.lon
    if f.size != t.size:
        raise GridMismatch(
            f"longitude count differs: forecast {f.size} (step {forecast.resolution_deg}) "
            f"vs truth {t.size} (step {truth.resolution_deg})"
        )
    if np.any(np.abs(f - t) > GRID_TOLERANCE_DEG):
        raise GridMismatch(f"longitudes differ at {_first_difference(f, t)}")


def _check_latitudes(forecast: Grid, truth: Grid) -> None:
    f = np.sort(forecast.lat)[::-1]
    t = np.sort(truth.lat)[::-1]
    if f.size == t.size - 2 and truth.has_poles and not forecast.has_poles:
        t = t[1:-1]
    if f.size != t.size:
        raise GridMismatch(
            f"latitude count differs: forecast {f.size} vs truth {t.size}"
            f" (only missing pole rows are allowed)"
        )
    if np.any(np.abs(f - t) > GRID_TOLERANCE_DEG):
        raise GridMismatch(f"latitudes differ (north to south) at {_first_difference(f, t)}")


def check_forecast_grid(forecast: Grid, truth: Grid) -> None:
    """Raise ``GridMismatch`` unless ``forecast`` is ``truth`` point for point.

    Allowed: the same points in either latitude order, and a forecast without the two
    pole rows of a truth grid that has them.
    """
    _check_longitudes(forecast, truth)
    _check_latitudes(forecast, truth)


def align_truth_to_forecast(truth: xr.Dataset, forecast: Grid) -> xr.Dataset:
    """Select the truth rows that the forecast grid holds, in the forecast's order.

    Checks the grids first (raising ``GridMismatch``); then drops pole rows the forecast
    lacks and reorders latitude; coordinates are set to the forecast's exact values.
    """
    truth_grid = Grid.from_dataset(truth)
    check_forecast_grid(forecast, truth_grid)
    t_lat = truth_grid.lat
    index = [int(np.argmin(np.abs(t_lat - lat))) for lat in forecast.lat]
    aligned = truth.isel(latitude=index)
    return aligned.assign_coords(latitude=forecast.lat, longitude=forecast.lon)

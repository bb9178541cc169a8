"""Grid invariants and the forecast/truth grid comparison."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.grid import (
    Grid,
    GridMismatch,
    align_truth_to_forecast,
    check_forecast_grid,
)


def test_regular_grid_has_poles_and_gfs_longitudes() -> None:
    grid = Grid.regular(2.5)
    assert grid.shape == (73, 144)
    assert grid.latitudes[0] == 90.0 and grid.latitudes[-1] == -90.0
    assert grid.longitudes[0] == 0.0 and grid.longitudes[-1] == 357.5
    assert grid.descending and grid.has_poles


@pytest.mark.parametrize(
    ("lat", "lon", "message"),
    [
        ([0, 1, 3], [0, 1, 2], "latitude is not regularly spaced"),
        ([0, 1, 2], [0, 1, 360], "longitudes outside"),
        ([0, 1, 2], [2, 1, 0], "longitude is not strictly ascending"),
        ([0, 0, 0], [0, 1, 2], "latitude is not strictly monotonic"),
        ([89, 91, 93], [0, 1, 2], "latitudes outside"),
    ],
)
def test_grid_rejects_bad_axes(lat: list[float], lon: list[float], message: str) -> None:
    with pytest.raises(GridMismatch, match=message):
        Grid(latitudes=lat, longitudes=lon)


def test_identical_and_reordered_grids_pass() -> None:
    truth = Grid.regular(1.0)
    check_forecast_grid(Grid.regular(1.0), truth)
    check_forecast_grid(Grid.regular(1.0, descending=False), truth)


def test_forecast_without_pole_rows_passes() -> None:
    truth = Grid.regular(1.0)
    forecast = Grid(latitudes=truth.lat[1:-1], longitudes=truth.lon)
    check_forecast_grid(forecast, truth)


def test_shifted_longitudes_fail_naming_the_index() -> None:
    truth = Grid.regular(1.0)
    shifted = Grid(latitudes=truth.lat, longitudes=truth.lon + 0.5)
    with pytest.raises(GridMismatch, match=r"longitudes differ at index 0: 0.5 vs 0.0"):
        check_forecast_grid(shifted, truth)


def test_shifted_latitudes_fail() -> None:
    truth = Grid.regular(1.0)
    shifted = Grid(latitudes=truth.lat[1:-1] - 0.5, longitudes=truth.lon)
    with pytest.raises(GridMismatch, match=r"latitudes differ \(north to south\) at index 0: 88.5 vs 89.0"):
        check_forecast_grid(shifted, truth)


def test_coarser_grid_fails_naming_counts() -> None:
    with pytest.raises(GridMismatch, match=r"longitude count differs: forecast 144 .* truth 360"):
        check_forecast_grid(Grid.regular(2.5), Grid.regular(1.0))


def test_one_missing_row_is_not_a_pole_difference() -> None:
    truth = Grid.regular(1.0)
    forecast = Grid(latitudes=truth.lat[1:], longitudes=truth.lon)
    with pytest.raises(GridMismatch, match="latitude count differs: forecast 180 vs truth 181"):
        check_forecast_grid(forecast, truth)


def test_align_truth_drops_poles_and_follows_forecast_order() -> None:
    truth_grid = Grid.regular(30.0)
    values = np.arange(truth_grid.shape[0], dtype=float)[:, None] * np.ones(truth_grid.shape)
    truth = xr.Dataset(
        {"2t": (("latitude", "longitude"), values)},
        coords={"latitude": truth_grid.lat, "longitude": truth_grid.lon},
    )
    forecast = Grid(latitudes=truth_grid.lat[1:-1][::-1], longitudes=truth_grid.lon)
    aligned = align_truth_to_forecast(truth, forecast)
    assert list(aligned["latitude"].values) == [-60.0, -30.0, 0.0, 30.0, 60.0]
    assert list(aligned["2t"].values[:, 0]) == [5.0, 4.0, 3.0, 2.0, 1.0]


def test_align_truth_refuses_a_mismatched_grid() -> None:
    truth_grid = Grid.regular(30.0)
    truth = xr.Dataset(coords={"latitude": truth_grid.lat, "longitude": truth_grid.lon})
    with pytest.raises(GridMismatch):
        align_truth_to_forecast(truth, Grid.regular(15.0))


def test_from_dataset_wraps_negative_longitudes() -> None:
    ds = xr.Dataset(coords={"latitude": [10.0, 0.0], "longitude": [0.0, 90.0]})
    assert Grid.from_dataset(ds).longitudes == (0.0, 90.0)
    with pytest.raises(GridMismatch, match="no 'latitude' coordinate"):
        Grid.from_dataset(xr.Dataset(coords={"lat": [0.0, 1.0]}))

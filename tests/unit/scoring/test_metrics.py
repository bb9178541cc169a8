"""Metrics against hand-computed numbers (derivations in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.scoring.metrics import (
    acc,
    bias,
    field_statistics,
    latitude_weights,
    mae,
    rmse,
    skill,
    wind_vector_rmse,
)

LON4 = [0.0, 90.0, 180.0, 270.0]


def field(values, latitude, longitude=LON4) -> xr.DataArray:
    return xr.DataArray(
        np.asarray(values, dtype=np.float64),
        dims=("latitude", "longitude"),
        coords={"latitude": latitude, "longitude": longitude},
    )


def rows(row_values, latitude) -> xr.DataArray:
    """A field constant along each latitude row."""
    return field([[value] * 4 for value in row_values], latitude)


# --- latitude weights -------------------------------------------------------------

def test_weights_3_rows_without_poles():
    # bounds -90, -30, 30, 90 -> areas 0.5, 1, 0.5 (sin differences), mean 2/3
    assert latitude_weights(np.array([-60.0, 0.0, 60.0])).values == pytest.approx([0.75, 1.5, 0.75])


def test_weights_with_pole_rows_are_half_cells():
    # bounds -90, -45, 45, 90 -> areas 1 - √2/2, √2, 1 - √2/2; mean 2/3
    pole = 1.5 * (1 - math.sqrt(2) / 2)
    weights = latitude_weights(np.array([90.0, 0.0, -90.0])).values
    assert weights == pytest.approx([pole, 1.5 * math.sqrt(2), pole])


@pytest.mark.parametrize("descending", [True, False])
def test_weights_follow_each_row_in_either_order(descending):
    # ascending -45, 0, 90: bounds -90, -22.5, 45, 90; areas sum to 2 so the mean is 2/3
    s22, s45 = math.sin(math.radians(22.5)), math.sin(math.radians(45.0))
    expected = {-45.0: 1.5 * (1 - s22), 0.0: 1.5 * (s22 + s45), 90.0: 1.5 * (1 - s45)}
    latitude = np.array([90.0, 0.0, -45.0] if descending else [-45.0, 0.0, 90.0])
    weights = latitude_weights(latitude)
    assert weights.values == pytest.approx([expected[lat] for lat in latitude])
    assert weights.values.mean() == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [[0.0, 0.0, 10.0], [0.0, 95.0], [0.0, 10.0, 5.0], [np.nan, 1.0]])
def test_weights_reject_bad_latitudes(bad):
    with pytest.raises(ValueError, match="latitude"):
        latitude_weights(np.array(bad))


# --- rmse, bias, mae on a 3x4 grid ----------------------------------------------------

LAT3 = [-60.0, 0.0, 60.0]  # weights 0.75, 1.5, 0.75
ERROR_3X4 = [[1, -1, 1, -1], [2, 2, 2, 2], [0, 0, 0, 4]]


def test_rmse_bias_mae_on_3x4_grid():
    truth = field(np.arange(12.0).reshape(3, 4), LAT3)
    forecast = truth + field(ERROR_3X4, LAT3)
    # row means of e²: 1, 4, 4 -> (0.75·1 + 1.5·4 + 0.75·4) / 3 = 3.25
    assert float(rmse(forecast, truth)) == pytest.approx(math.sqrt(3.25))
    # row means of e: 0, 2, 1 -> (0 + 3 + 0.75) / 3 = 1.25
    assert float(bias(forecast, truth)) == pytest.approx(1.25)
    # row means of |e|: 1, 2, 1 -> (0.75 + 3 + 0.75) / 3 = 1.5
    assert float(mae(forecast, truth)) == pytest.approx(1.5)


def test_rmse_with_pole_rows():
    lat = [90.0, 0.0, -90.0]
    # errors 2, 1, 2 by row: (2·(1-√2/2)·1.5·4 + √2·1.5·1) / 3 = 4 - 1.5√2
    error = rows([2.0, 1.0, 2.0], lat)
    assert float(rmse(error, error * 0)) == pytest.approx(math.sqrt(4 - 1.5 * math.sqrt(2)))


@pytest.mark.parametrize("descending", [True, False])
def test_bias_on_pole_grid_in_either_order(descending):
    # lat 90, 30, -30, -90: bounds ±60, 0 -> weights 2-√3, √3, √3, 2-√3 (mean 1)
    # errors 4, 0, 2, 0 -> ((2-√3)·4 + √3·2) / 4 = 2 - √3/2
    by_lat = {90.0: 4.0, 30.0: 0.0, -30.0: 2.0, -90.0: 0.0}
    lat = [90.0, 30.0, -30.0, -90.0] if descending else [-90.0, -30.0, 30.0, 90.0]
    error = rows([by_lat[value] for value in lat], lat)
    assert float(bias(error, error * 0)) == pytest.approx(2 - math.sqrt(3) / 2)


def test_constant_bias_rmse_equals_bias():
    rng = np.random.default_rng(0)
    lat = np.linspace(90.0, -90.0, 7)
    truth = field(rng.normal(280.0, 10.0, (7, 4)), lat)
    forecast = truth + 2.5
    assert float(rmse(forecast, truth)) == pytest.approx(2.5)
    assert float(bias(forecast, truth)) == pytest.approx(2.5)
    assert float(mae(forecast, truth)) == pytest.approx(2.5)


def test_other_dims_are_kept_and_nan_propagates_per_slice():
    error = np.stack([np.full((3, 4), 1.0), np.full((3, 4), 3.0)])
    error[1, 0, 0] = np.nan
    forecast = xr.DataArray(error, dims=("time", "latitude", "longitude"),
                            coords={"time": [0, 1], "latitude": LAT3, "longitude": LON4})
    result = rmse(forecast, forecast * 0)
    assert result.dims == ("time",)
    assert float(result[0]) == pytest.approx(1.0)
    assert np.isnan(float(result[1]))


def test_mismatched_grids_are_refused():
    truth = rows([1.0, 2.0, 3.0], LAT3)
    shifted = rows([1.0, 2.0, 3.0], [-50.0, 0.0, 60.0])
    with pytest.raises(ValueError):
        rmse(shifted, truth)


# --- acc, skill, wind vector ------------------------------------------------------------

ANOMALY = [[1, -1, 1, -1]] * 3
ORTHOGONAL = [[1, 1, -1, -1]] * 3  # row sums of ANOMALY·ORTHOGONAL are 0


@pytest.mark.parametrize(
    ("forecast_anomaly", "expected"),
    [
        (np.multiply(2, ANOMALY), 1.0),  # scale does not matter
        (np.multiply(-1, ANOMALY), -1.0),
        (ORTHOGONAL, 0.0),
        (np.add(ANOMALY, ORTHOGONAL), 1 / math.sqrt(2)),  # <F'T'> = 1, <F'²> = 2, <T'²> = 1
    ],
)
def test_acc_hand_cases(forecast_anomaly, expected):
    climatology = field(np.full((3, 4), 280.0), LAT3)
    truth = climatology + field(ANOMALY, LAT3)
    forecast = climatology + field(forecast_anomaly, LAT3)
    assert float(acc(forecast, truth, climatology)) == pytest.approx(expected)


def test_acc_is_uncentred():
    # a constant anomaly everywhere has correlation 1 with itself (a centred ACC is 0/0)
    climatology = rows([0.0, 0.0, 0.0], LAT3)
    truth = rows([2.0, 2.0, 2.0], LAT3)
    assert float(acc(truth * 3, truth, climatology)) == pytest.approx(1.0)


def test_acc_of_climatology_is_zero():
    climatology = field(np.full((3, 4), 5.0), LAT3)
    truth = climatology + field(ANOMALY, LAT3)
    assert float(acc(climatology, truth, climatology)) == 0.0


def test_skill_against_a_reference():
    truth = rows([1.0, 2.0, 3.0], LAT3)
    # rmse 1 vs rmse 2 -> 1 - 1/2
    assert float(skill(truth + 1.0, truth, truth - 2.0)) == pytest.approx(0.5)
    assert float(skill(truth - 2.0, truth, truth - 2.0)) == pytest.approx(0.0)


def test_wind_vector_rmse():
    zero = rows([0.0, 0.0, 0.0], LAT3)
    # |(3, 4)| = 5 everywhere
    assert float(wind_vector_rmse(zero + 3.0, zero + 4.0, zero, zero)) == pytest.approx(5.0)
    # du² rows 9, 0, 0 and dv² rows 0, 0, 16: (0.75·9 + 0.75·16) / 3 = 6.25
    du, dv = rows([3.0, 0.0, 0.0], LAT3), rows([0.0, 0.0, 4.0], LAT3)
    assert float(wind_vector_rmse(du, dv, zero, zero)) == pytest.approx(2.5)


# --- the numpy hot path agrees with the xarray functions ---------------------------------

@pytest.mark.parametrize("block_rows", [1, 2, 64])
def test_field_statistics_match_the_metrics(block_rows):
    rng = np.random.default_rng(1)
    lat = np.linspace(-90.0, 90.0, 9)
    lon = np.arange(8) * 45.0
    clim, truth, forecast = (
        xr.DataArray(rng.normal(size=(9, 8)), dims=("latitude", "longitude"),
                     coords={"latitude": lat, "longitude": lon})
        for _ in range(3)
    )
    weights = latitude_weights(lat).values
    stats = field_statistics(forecast.values, truth.values, clim.values, weights, block_rows)
    assert stats.rmse == pytest.approx(float(rmse(forecast, truth)))
    assert stats.bias == pytest.approx(float(bias(forecast, truth)))
    assert stats.acc == pytest.approx(float(acc(forecast, truth, clim)))
    assert stats.skill == pytest.approx(float(skill(forecast, truth, clim)))


def test_field_statistics_in_float32_keep_small_errors_of_large_values():
    # z500-like: values ~5.5e4 m2 s-2, anomalies ~800, forecast errors ~20
    rng = np.random.default_rng(2)
    clim = 55_000.0 + rng.normal(0.0, 2_000.0, (181, 360))
    truth = clim + rng.normal(0.0, 800.0, clim.shape)
    forecast = truth + rng.normal(0.0, 20.0, clim.shape)
    weights = latitude_weights(np.linspace(90.0, -90.0, 181)).values
    exact = field_statistics(forecast, truth, clim, weights)
    single = field_statistics(*(a.astype(np.float32) for a in (forecast, truth, clim)), weights)
    assert single.rmse == pytest.approx(exact.rmse, rel=1e-4)
    assert single.acc == pytest.approx(exact.acc, rel=1e-6)
    assert single.skill == pytest.approx(exact.skill, rel=1e-5)


def test_field_statistics_refuse_unlike_fields():
    with pytest.raises(ValueError, match="forecast"):
        field_statistics(np.zeros((3, 4)), np.zeros((3, 5)), np.zeros((3, 4)), np.ones(3))


def test_float32_fields_of_3e38_give_finite_sums_equal_to_float64():
    # ±3e38 is finite in float32; its square (9e76) and F − C (6e38) are not
    lat = np.array([-60.0, 0.0, 60.0])
    weights = latitude_weights(lat).values
    clim = np.full((3, 4), 280.0)
    truth = clim + np.array([[2.0, -2.0, 2.0, -2.0]] * 3)
    forecast = np.where(np.arange(4) % 2 == 0, 3e38, -3e38) * np.ones((3, 1))
    single = field_statistics(*(a.astype(np.float32) for a in (forecast, truth, clim)), weights)
    double = field_statistics(forecast.astype(np.float32).astype(np.float64), truth, clim, weights)
    assert single.is_finite() and single == double
    assert single.rmse == pytest.approx(3e38, rel=1e-6)


def test_xarray_metrics_sum_in_float64_whatever_the_input_dtype():
    lat = [-60.0, 0.0, 60.0]
    truth = field(np.zeros((3, 4)), lat).astype(np.float32)
    forecast = field(np.full((3, 4), 3e38), lat).astype(np.float32)
    assert float(rmse(forecast, truth)) == pytest.approx(3e38, rel=1e-6)
    assert float(rmse(forecast, -forecast)) == pytest.approx(6e38, rel=1e-6)
    assert float(mae(forecast, truth)) == pytest.approx(3e38, rel=1e-6)
    assert rmse(forecast, truth).dtype == np.float64

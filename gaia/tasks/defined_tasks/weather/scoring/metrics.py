"""Latitude-weighted verification metrics (WeatherBench-2 definitions).

Every metric reduces over ``latitude`` and ``longitude`` only; any other dims (time,
lead_hours, level) are kept. Spatial means are weighted by cell area
(:func:`latitude_weights`, mean 1). Inputs must share their coordinates exactly (grids
in different latitude order are aligned by the caller, see ``fields.py``); a NaN in an
input makes the affected result NaN, since coverage is the caller's explicit decision.
Every difference and sum is taken in float64 whatever the input dtype: float32 fields of
±3e38 are finite, their squares are not.

The reductions run in numpy on the underlying arrays: the weights are a 1-D latitude
vector applied to per-row sums (``einsum``), so no weighted full-size copy is formed.
:func:`field_statistics` computes every ERA5 metric of one 2-D field from one set of
sums; the xarray functions and it share :func:`_row_dot`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

LAT = "latitude"
LON = "longitude"
BLOCK_ROWS = 64  # rows per cache-sized block in field_statistics


def latitude_weights(latitude: xr.DataArray | np.ndarray) -> xr.DataArray:
    """Cell-area weights, normalised to mean 1, for latitudes in degrees (either order).

    Cell bounds are the midpoints between neighbouring rows and ±90° at the ends, so a
    pole row gets a half cell; weight ∝ sin(upper bound) − sin(lower bound).
    """
    values = np.asarray(latitude, dtype=np.float64)
    _check_latitudes(values)
    order = np.argsort(values)
    ascending = np.deg2rad(values[order])
    bounds = np.concatenate([[-np.pi / 2], (ascending[:-1] + ascending[1:]) / 2, [np.pi / 2]])
    areas = np.empty_like(values)
    areas[order] = np.sin(bounds[1:]) - np.sin(bounds[:-1])
    weights = areas / areas.mean()
    coords = {LAT: latitude} if isinstance(latitude, xr.DataArray) else {LAT: values}
    return xr.DataArray(weights, dims=(LAT,), coords=coords, name="latitude_weights")


def _check_latitudes(values: np.ndarray) -> None:
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"latitude must be a non-empty 1-D array, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(np.abs(values) > 90.0):
        raise ValueError("latitude values must be finite and within [-90, 90] degrees")
    steps = np.diff(values)
    if not (np.all(steps > 0) or np.all(steps < 0)):
        raise ValueError("latitude must be strictly monotone (ascending or descending)")


def _row_dot(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over the last two axes (lat, lon) of a*b, without forming a*b."""
    rows = np.einsum("...ij,...ij->...i", a, b, dtype=np.float64)
    return rows @ weights / (a.shape[-2] * a.shape[-1])


def _row_sum(a: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over the last two axes (lat, lon) of a."""
    return a.sum(axis=-1, dtype=np.float64) @ weights / (a.shape[-2] * a.shape[-1])


def _spatial(a: xr.DataArray, b: xr.DataArray | None = None) -> xr.DataArray:
    """Weighted spatial mean of ``a`` (or of ``a*b``), keeping every other dim."""
    for name in (LAT, LON):
        if name not in a.dims:
            raise ValueError(f"metric input needs dims latitude and longitude, got {a.dims}")
    if b is not None:
        a, b = xr.broadcast(a, b)
    a = a.transpose(..., LAT, LON)
    weights = latitude_weights(a[LAT]).to_numpy()
    if b is None:
        means = _row_sum(a.to_numpy(), weights)
    else:
        means = _row_dot(a.to_numpy(), b.transpose(*a.dims).to_numpy(), weights)
    template = a.isel({LAT: 0, LON: 0}, drop=True)
    return template.copy(data=np.asarray(means, dtype=np.float64))


def _difference(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    with xr.set_options(arithmetic_join="exact", keep_attrs=False):
        return a.astype(np.float64, copy=False) - b


def rmse(forecast: xr.DataArray, truth: xr.DataArray) -> xr.DataArray:
    """√(weighted mean of (forecast − truth)²)."""
    error = _difference(forecast, truth)
    return _spatial(error, error) ** 0.5


def bias(forecast: xr.DataArray, truth: xr.DataArray) -> xr.DataArray:
    """Weighted mean of (forecast − truth)."""
    return _spatial(_difference(forecast, truth))


def mae(forecast: xr.DataArray, truth: xr.DataArray) -> xr.DataArray:
    """Weighted mean of |forecast − truth|."""
    return _spatial(abs(_difference(forecast, truth)))


def acc(forecast: xr.DataArray, truth: xr.DataArray, climatology: xr.DataArray) -> xr.DataArray:
    """Uncentred anomaly correlation ⟨F′T′⟩ / √(⟨F′²⟩⟨T′²⟩), F′ = F − C, T′ = T − C.

    Where an anomaly is identically zero (e.g. the climatology scored as a forecast) the
    ACC is defined as 0, the climatology's own score.
    """
    forecast_anomaly = _difference(forecast, climatology)
    truth_anomaly = _difference(truth, climatology)
    product = _spatial(forecast_anomaly, truth_anomaly)
    variance = _spatial(forecast_anomaly, forecast_anomaly) * _spatial(truth_anomaly, truth_anomaly)
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = product / np.sqrt(variance)
    return correlation.where(variance != 0, 0.0)


def skill(forecast: xr.DataArray, truth: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """1 − RMSE(forecast)/RMSE(reference): 1 perfect, 0 as good as the reference."""
    return 1.0 - rmse(forecast, truth) / rmse(reference, truth)


def wind_vector_rmse(
    u_forecast: xr.DataArray,
    v_forecast: xr.DataArray,
    u_truth: xr.DataArray,
    v_truth: xr.DataArray,
) -> xr.DataArray:
    """√(weighted mean of (Δu² + Δv²)): RMSE of the wind vector error's length."""
    du = _difference(u_forecast, u_truth)
    dv = _difference(v_forecast, v_truth)
    return (_spatial(du, du) + _spatial(dv, dv)) ** 0.5


@dataclass(frozen=True)
class FieldStatistics:
    """Weighted spatial means of one field, from which every ERA5 metric follows.

    ``mse`` = ⟨(F−T)²⟩, ``mean_error`` = ⟨F−T⟩, ``forecast_anomaly_sq`` = ⟨F′²⟩,
    ``truth_anomaly_sq`` = ⟨T′²⟩ (= MSE of the climatology), ``anomaly_product`` = ⟨F′T′⟩.
    """

    mse: float
    mean_error: float
    forecast_anomaly_sq: float
    truth_anomaly_sq: float
    anomaly_product: float

    @property
    def rmse(self) -> float:
        return float(np.sqrt(self.mse))

    @property
    def bias(self) -> float:
        return self.mean_error

    @property
    def acc(self) -> float:
        variance = self.forecast_anomaly_sq * self.truth_anomaly_sq
        return float(self.anomaly_product / np.sqrt(variance)) if variance > 0 else 0.0

    @property
    def climatology_rmse(self) -> float:
        return float(np.sqrt(self.truth_anomaly_sq))

    @property
    def skill(self) -> float:
        """1 − RMSE(forecast)/RMSE(climatology); 0 when both are 0 (nothing to score)."""
        if self.truth_anomaly_sq > 0:
            return 1.0 - self.rmse / self.climatology_rmse
        return 0.0 if self.mse == 0 else -np.inf

    def is_finite(self) -> bool:
        return bool(np.isfinite([self.mse, self.mean_error, self.forecast_anomaly_sq,
                                 self.truth_anomaly_sq, self.anomaly_product]).all())


def field_statistics(
    forecast: np.ndarray,
    truth: np.ndarray,
    climatology: np.ndarray,
    weights: np.ndarray,
    block_rows: int = BLOCK_ROWS,
) -> FieldStatistics:
    """All sums for one (lat, lon) field, reading each input once.

    Rows are processed in blocks small enough for the CPU cache, so the two anomaly
    buffers (``block_rows`` x nlon each) are the only temporaries and memory traffic is
    one read of the three inputs. Row sums are added up in float64. Float32 inputs are
    differenced and dotted per row in float32 (exact enough: relative error ~1e-6, and
    twice as fast as widening every block); when that overflows (values near ±3e38) the
    field is summed again in float64, so finite inputs give finite sums unless float64
    itself overflows.
    """
    if not forecast.shape == truth.shape == climatology.shape or forecast.ndim != 2:
        raise ValueError(
            f"fields must be 2-D and alike: forecast {forecast.shape}, truth {truth.shape}, "
            f"climatology {climatology.shape}"
        )
    dtype = np.result_type(forecast, truth, climatology, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        sums = _weighted_sums(forecast, truth, climatology, weights, block_rows, dtype)
        if not np.isfinite(sums).all() and dtype != np.float64:
            sums = _weighted_sums(forecast, truth, climatology, weights, block_rows, np.float64)
    return FieldStatistics(*(float(value) for value in sums))


def _weighted_sums(
    forecast: np.ndarray,
    truth: np.ndarray,
    climatology: np.ndarray,
    weights: np.ndarray,
    block_rows: int,
    dtype: np.dtype | type[np.floating],
) -> np.ndarray:
    """⟨(F−T)²⟩, ⟨F−T⟩, ⟨F′²⟩, ⟨T′²⟩, ⟨F′T′⟩ with differences and row dots in ``dtype``."""
    nlat, nlon = forecast.shape
    first, second = np.empty((2, min(block_rows, nlat), nlon), dtype=dtype)
    products = np.empty((5, min(block_rows, nlat)))  # per row: ee, e, ff, tt, ft
    ones = np.ones(nlon, dtype=dtype)
    sums = np.zeros(5)
    for start in range(0, nlat, block_rows):
        rows = slice(start, min(start + block_rows, nlat))
        size = rows.stop - start
        row_products = products[:, :size]
        forecast_anomaly = np.subtract(forecast[rows], climatology[rows], out=first[:size],
                                       dtype=dtype)
        truth_anomaly = np.subtract(truth[rows], climatology[rows], out=second[:size],
                                    dtype=dtype)
        np.vecdot(forecast_anomaly, forecast_anomaly, out=row_products[2])
        np.vecdot(truth_anomaly, truth_anomaly, out=row_products[3])
        np.vecdot(forecast_anomaly, truth_anomaly, out=row_products[4])
        error = np.subtract(forecast[rows], truth[rows], out=first[:size], dtype=dtype)
        np.vecdot(error, error, out=row_products[0])
        np.matmul(error, ones, out=row_products[1])
        sums += row_products @ weights[rows]
    return sums / (nlat * nlon)

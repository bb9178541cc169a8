"""Built-in forecast models on synthetic weather-like inputs with travelling waves."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.data.synthetic import SyntheticWeather
from gaia.tasks.defined_tasks.weather.inference import (
    MODELS,
    ForecastInputs,
    InvalidInputs,
    UnknownModel,
    get_model,
)
from gaia.tasks.defined_tasks.weather.inference.synthetic import synthetic_state
from gaia.tasks.defined_tasks.weather.variables import ALL_VARIABLES, PRESSURE_LEVELS_HPA

T0 = np.datetime64("2026-11-20T12:00", "ns")
SIX_HOURS = np.timedelta64(6, "h")
GRID = Grid.regular(3.0)
LEVELS = (250, 500, 850)


def _inputs(**kwargs: object) -> ForecastInputs:
    return ForecastInputs.from_dataset(
        synthetic_state(GRID, [T0 - SIX_HOURS, T0], levels=LEVELS, **kwargs)  # type: ignore[arg-type]
    )


def _weighted_rmse(forecast: xr.DataArray, truth: xr.DataArray) -> float:
    weights = np.cos(np.deg2rad(forecast["latitude"]))
    error = ((forecast - truth) ** 2).weighted(weights).mean()
    return float(np.sqrt(error))


def test_persistence_returns_t0_at_every_lead() -> None:
    inputs = _inputs()
    leads = [6, 24, 240]
    produced = list(get_model("persistence").forecast(inputs, leads))
    assert [lead for lead, _ in produced] == leads
    for lead, state in produced:
        assert state["time"].values[0] == T0 + np.timedelta64(lead, "h")
        for name in ALL_VARIABLES:
            np.testing.assert_array_equal(state[name].values[0], inputs.fields[name][1])
            assert state[name].dtype == np.float32


def test_spectral_advection_beats_persistence_at_24h() -> None:
    inputs = _inputs()
    truth = synthetic_state(GRID, [T0 - SIX_HOURS, T0, T0 + 4 * SIX_HOURS], levels=LEVELS).isel(time=[2])
    scores = {}
    for name in ("persistence", "spectral_advection"):
        [(_, state)] = list(get_model(name).forecast(inputs, [24]))
        scores[name] = {v: _weighted_rmse(state[v], truth[v]) for v in ("z", "t", "u", "2t", "msl")}
    for variable, persistence_rmse in scores["persistence"].items():
        assert scores["spectral_advection"][variable] < 0.8 * persistence_rmse, variable


def test_noisy_persistence_is_worse_than_persistence() -> None:
    inputs = _inputs()
    truth = synthetic_state(GRID, [T0 - SIX_HOURS, T0, T0 + 20 * SIX_HOURS], levels=LEVELS).isel(time=[2])
    [(_, noisy)] = list(get_model("noisy_persistence").forecast(inputs, [120]))
    [(_, plain)] = list(get_model("persistence").forecast(inputs, [120]))
    assert _weighted_rmse(noisy["z"], truth["z"]) > _weighted_rmse(plain["z"], truth["z"])
    assert float(noisy["q"].min()) >= 0.0


def test_models_yield_canonical_float32_states_in_order() -> None:
    inputs = _inputs()
    for name in sorted(set(MODELS) - {"aurora"}):  # aurora needs a checkpoint: test_aurora_*
        leads = [lead for lead, _ in get_model(name).forecast(inputs, [6, 12, 18])]
        assert leads == [6, 12, 18]
        _, state = next(iter(get_model(name).forecast(inputs, [6])))
        assert state["z"].dims == ("time", "level", "latitude", "longitude")
        assert state["2t"].dims == ("time", "latitude", "longitude")
        assert state["level"].values.tolist() == list(LEVELS)
        assert all(state[v].dtype == np.float32 for v in state.data_vars)


def test_spectral_advection_keeps_humidity_non_negative_and_zonal_mean() -> None:
    inputs = _inputs()
    *_, (_, state) = get_model("spectral_advection").forecast(inputs, list(range(6, 241, 6)))
    assert float(state["q"].min()) >= 0.0
    zonal_t0 = inputs.fields["t"][1].mean(axis=-1)
    np.testing.assert_allclose(state["t"].values[0].mean(axis=-1), zonal_t0, rtol=1e-5)


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(UnknownModel, match="known: aurora, noisy_persistence, persistence, spectral_advection"):
        get_model("aurora-huge")
    with pytest.raises(ValueError, match="bad options"):
        get_model("persistence", tau_hours=3)
    assert get_model("spectral_advection", tau_hours=100).tau_hours == 100  # type: ignore[attr-defined]


def test_inputs_reject_wrong_times_unknown_variables_and_nan() -> None:
    ds = synthetic_state(GRID, [T0 - SIX_HOURS, T0], levels=LEVELS)
    with pytest.raises(InvalidInputs, match="two times"):
        ForecastInputs.from_dataset(ds.isel(time=[1]))
    with pytest.raises(InvalidInputs, match="unknown variable 'gh'"):
        ForecastInputs.from_dataset(ds.assign(gh=ds["z"]))
    with pytest.raises(InvalidInputs, match="unknown pressure levels"):
        ForecastInputs.from_dataset(ds.assign_coords(level=[250, 500, 851]))
    broken = ds.copy(deep=True)
    broken["msl"][0, 0, 0] = np.nan
    with pytest.raises(InvalidInputs, match="'msl' holds NaN"):
        ForecastInputs.from_dataset(broken)


def test_inputs_accept_either_latitude_order_and_any_dim_order() -> None:
    ds = synthetic_state(GRID, [T0 - SIX_HOURS, T0], levels=PRESSURE_LEVELS_HPA[:2])
    flipped = ds.isel(latitude=slice(None, None, -1)).transpose("longitude", "latitude", ...)
    inputs = ForecastInputs.from_dataset(flipped)
    assert not inputs.grid.descending
    assert inputs.fields["z"].shape == (2, 2, *GRID.shape)


def _archive_inputs_and_truth(weather: SyntheticWeather, step: int) -> tuple[ForecastInputs, dict]:
    states = [weather.truth(step - 1), weather.truth(step)]
    data_vars = {}
    for name in ALL_VARIABLES:
        dims = ("time", "level", "latitude", "longitude") if name in ("t", "u", "v", "q", "z") \
            else ("time", "latitude", "longitude")
        data_vars[name] = (dims, np.stack([s[name] for s in states]).astype(np.float32))
    coords = {"time": [np.datetime64(weather.time_of(step - 1)), np.datetime64(weather.time_of(step))],
              "latitude": weather.grid.lat, "longitude": weather.grid.lon,
              "level": list(PRESSURE_LEVELS_HPA)}
    return ForecastInputs.from_dataset(xr.Dataset(data_vars, coords=coords)), weather.truth(step + 4)


def test_spectral_advection_beats_persistence_at_24h_on_the_archive_weather() -> None:
    """The local archive's weather: slow waves with random (OU) amplitudes, noise, a diurnal tide."""
    weather = SyntheticWeather(Grid.regular(3.0), datetime(2026, 1, 1), 160, seed=3)
    weights = np.cos(np.deg2rad(weather.grid.lat))[:, None]
    totals = {"persistence": 0.0, "spectral_advection": 0.0}
    for step in (20, 60, 100, 140):
        inputs, truth = _archive_inputs_and_truth(weather, step)
        for name in totals:
            [(_, state)] = list(get_model(name).forecast(inputs, [24]))
            z500 = state["z"].values[0, PRESSURE_LEVELS_HPA.index(500)]
            error = (z500 - truth["z"][PRESSURE_LEVELS_HPA.index(500)]) ** 2
            totals[name] += float(np.sqrt((error * weights).mean() / weights.mean()))
    assert totals["spectral_advection"] < totals["persistence"]

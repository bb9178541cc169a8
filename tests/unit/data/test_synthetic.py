"""The synthetic weather is weather-shaped (in memory, small grid)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.data.synthetic import SyntheticWeather
from gaia.tasks.defined_tasks.weather.variables import PRESSURE_LEVELS_HPA, STANDARD_GRAVITY

GRID = Grid.regular(5.0)
LEVEL = {p: i for i, p in enumerate(PRESSURE_LEVELS_HPA)}


def _weather(seed: int = 1) -> SyntheticWeather:
    return SyntheticWeather(GRID, datetime(2025, 1, 1, tzinfo=UTC), 8, seed)


def test_mean_state_is_realistic() -> None:
    mean = _weather().mean(15, 0)
    equator, pole = GRID.shape[0] // 2, 0
    t = mean["t"].mean(axis=2)
    assert 285 < t[LEVEL[1000], equator] < 305 and t[LEVEL[1000], pole] < 265
    assert np.all(np.diff(t[LEVEL[300]:, equator]) > 0)  # warmer downwards in the troposphere
    z500 = mean["z"][LEVEL[500]].mean(axis=1) / STANDARD_GRAVITY
    assert 5700 < z500[equator] < 5950 and 4600 < z500[pole] < 5400
    assert np.all(np.diff(mean["z"], axis=0) < 0)  # geopotential falls with pressure
    u = mean["u"].mean(axis=2)
    jet_level = int(np.argmax(u.max(axis=1)))
    assert PRESSURE_LEVELS_HPA[jet_level] == 250 and 25 < u.max() < 45
    assert 95000 < mean["msl"].min() and mean["msl"].max() < 106000
    assert np.all(mean["q"] > 0) and mean["q"].max() < 0.025


def test_same_seed_same_weather_other_seed_other_weather() -> None:
    a, b, c = _weather(1).truth(3), _weather(1).truth(3), _weather(2).truth(3)
    np.testing.assert_array_equal(a["z"], b["z"])
    assert not np.allclose(a["z"], c["z"])


def test_forecast_error_grows_with_lead() -> None:
    weather = _weather()
    truth = weather.truth(4)
    err0 = np.abs(weather.forecast(4, 0)["z"] - truth["z"]).mean()
    err24 = np.abs(weather.forecast(0, 24)["z"] - truth["z"]).mean()
    assert 0 < err0 < err24

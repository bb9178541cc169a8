"""Day-1 verdicts on synthetic canonical datasets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.scoring.coverage import ReferenceDataError
from gaia.tasks.defined_tasks.weather.scoring.day1 import score_day1
from gaia.tasks.defined_tasks.weather.scoring.fields import with_lead_hours
from gaia.tasks.defined_tasks.weather.scoring.records import Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.variables import STANDARD_GRAVITY
from tests.fixtures.synthetic_weather import Grid, climatology, observed, with_noise

LEADS = [6, 12, 24]
GRID = Grid.regular(19, 36)


@pytest.fixture(scope="module")
def world() -> dict[str, xr.Dataset]:
    truth = observed(GRID, LEADS)
    gfs = with_noise(truth, 0.15, seed=10)
    return {
        "climatology": climatology(GRID, LEADS),
        "gfs": gfs,
        "model": with_noise(truth, 0.3, seed=11),  # a different model, moderate errors
        "clone": with_noise(gfs, 0.01, seed=12),  # GFS plus a little noise
    }


def score(world, forecast, config=None):
    return score_day1(forecast, world["gfs"], world["climatology"], config)


def test_realistic_forecast_passes(world):
    result = score(world, world["model"])
    assert result.passed and not result.clone and result.eligible
    assert result.reasons == ()
    assert 0.2 < result.score < 1.0


def test_gfs_with_small_noise_is_a_clone(world):
    result = score(world, world["clone"])
    assert result.clone and not result.eligible
    assert any("clone" in reason for reason in result.reasons)


def test_climatology_as_forecast_fails_on_score(world):
    result = score(world, world["climatology"])
    assert not result.passed
    assert result.score == 0.0
    assert any("below the minimum" in reason for reason in result.reasons)


def test_nan_holes_fail_naming_the_field(world):
    forecast = world["model"].copy(deep=True)
    forecast["2t"].values[1, :3, :] = np.nan  # 3 of 19 rows at lead 12 h
    result = score(world, forecast)
    assert not result.passed
    assert any(r.startswith("2t at lead 12 h") and "non-finite" in r for r in result.reasons)
    hole = next(f for f in result.fields if (f.variable, f.lead_hours) == ("2t", 12))
    assert hole.scored.missing and hole.scored.coverage == pytest.approx(16 / 19)


def test_one_nan_cell_withholds_the_field_and_fails_the_day(world):
    # withholding the cells a model got worst must not pass where sending them would fail
    forecast = world["model"].copy(deep=True)
    forecast["msl"].values[0, 5, 5] = np.nan  # one cell in 684
    result = score(world, forecast)
    assert not result.passed
    assert any(r.startswith("msl at lead 6 h") and "non-finite values in 0.1462%" in r
               for r in result.reasons)
    hole = next(f for f in result.fields if (f.variable, f.lead_hours) == ("msl", 6))
    assert hole.scored.missing and hole.scored.coverage == pytest.approx(683 / 684)
    assert hole.quality == 0.0 and not hole.range_ok
    assert all(np.isfinite(r.value) for r in hole.records())


def test_values_whose_squares_overflow_float64_withhold_the_field(world):
    forecast = world["model"].astype(np.float64)
    forecast["10u"].values[2] = 1e300
    result = score(world, forecast)
    assert not result.passed
    assert "10u at lead 24 h: values too large to score (their squares overflow float64)" in (
        result.reasons)
    hole = next(f for f in result.fields if (f.variable, f.lead_hours) == ("10u", 24))
    assert hole.scored.missing and hole.scored.coverage == 1.0 and hole.quality == 0.0
    assert all(np.isfinite(r.value) for r in result.records())


def test_geopotential_height_in_metres_fails_naming_z(world):
    forecast = world["model"].copy(deep=True)
    forecast["z"] = forecast["z"] / STANDARD_GRAVITY
    result = score(world, forecast)
    assert not result.passed
    assert any(r.startswith("z500") and "plausible range" in r for r in result.reasons)


def test_missing_variable_fails_naming_it(world):
    result = score(world, world["model"].drop_vars("10v"))
    assert not result.passed
    assert any(r.startswith("10v at lead 6 h") and "missing" in r for r in result.reasons)


def test_latitude_order_does_not_change_the_score(world):
    flipped = world["model"].isel(latitude=slice(None, None, -1))
    assert score(world, flipped).score == pytest.approx(score(world, world["model"]).score)


def test_reference_without_a_lead_raises(world):
    with pytest.raises(ReferenceDataError, match="lead 24"):
        score_day1(world["model"], world["gfs"].sel(lead_hours=[6, 12]), world["climatology"])


def test_records_are_flat_complete_and_unique(world):
    result = score(world, world["model"])
    records = result.records()
    assert len(records) == 6 * 3 * 8 + 3
    keys = {(r.kind, r.variable, r.level, r.lead_hours, r.metric) for r in records}
    assert len(keys) == len(records)
    assert all(r.kind is ScoreKind.DAY1 and isinstance(r.value, float) for r in records)
    assert all(np.isfinite(r.value) for r in records)
    z500 = {r.metric: r.value for r in records if (r.variable, r.level, r.lead_hours) == ("z", 500, 6)}
    assert z500[Metric.RANGE_OK] == 1.0 and z500[Metric.COVERAGE] == 1.0
    summary = {r.metric: r.value for r in records if r.variable == "all"}
    assert summary == {Metric.SCORE: result.score, Metric.PASSED: 1.0, Metric.CLONE: 0.0}


def test_valid_time_dim_converts_to_lead_hours():
    init = np.datetime64("2026-11-20T12:00", "ns")
    dataset = xr.Dataset(
        {"2t": (("time",), [1.0, 2.0])},
        coords={"time": [init + np.timedelta64(6, "h"), init + np.timedelta64(24, "h")]},
    )
    assert with_lead_hours(dataset, init)["lead_hours"].values.tolist() == [6, 24]
    aware = datetime(2026, 11, 20, 14, tzinfo=timezone(timedelta(hours=2)))  # 12Z
    assert with_lead_hours(dataset, aware)["lead_hours"].values.tolist() == [6, 24]

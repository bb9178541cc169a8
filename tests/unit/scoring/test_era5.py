"""ERA5 scoring on synthetic canonical datasets (moving waves)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.scoring.coverage import ReferenceDataError
from gaia.tasks.defined_tasks.weather.scoring.era5 import (
    ERA5_LEAD_HOURS,
    Era5Config,
    score_era5,
)
from gaia.tasks.defined_tasks.weather.scoring.metrics import skill
from gaia.tasks.defined_tasks.weather.scoring.records import Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.scoring.rollup import RollupConfig, weighted_skill
from tests.fixtures.synthetic_weather import Grid, climatology, observed, with_noise

LEADS = list(ERA5_LEAD_HOURS)
GRID = Grid.regular(13, 24, descending=False)  # ERA5 zarr order: ascending latitudes


@pytest.fixture(scope="module")
def world() -> dict[str, xr.Dataset]:
    truth = observed(GRID, LEADS)
    return {
        "truth": truth,
        "climatology": climatology(GRID, LEADS),
        # forecasts arrive on the GFS grid: descending latitudes
        "good": with_noise(truth, 0.2, seed=1).isel(latitude=slice(None, None, -1)),
        "poor": with_noise(truth, 0.6, seed=2),
        "persistence": observed(GRID, LEADS, at_hours=0),
    }


def score(world, forecast, config=None):
    return score_era5(forecast, world["truth"], world["climatology"], config)


def test_better_forecast_scores_higher(world):
    good, poor = score(world, world["good"]), score(world, world["poor"])
    assert weighted_skill(good, RollupConfig()) > weighted_skill(poor, RollupConfig()) > -1.0
    for good_field, poor_field in zip(good.fields, poor.fields, strict=True):
        assert good_field.scored.stats.rmse < poor_field.scored.stats.rmse


def test_persistence_skill_falls_with_lead(world):
    result = score(world, world["persistence"])
    for variable, level in [("z", 500), ("t", 850), ("2t", None)]:
        skills = [result.get(variable, level, lead).skill for lead in LEADS]
        assert all(np.diff(skills) < 0), (variable, skills)
        assert skills[0] > 0.5 > skills[-1]


def test_missing_variable_scores_the_floor_and_keeps_the_rest(world):
    full = score(world, world["good"])
    partial = score(world, world["good"].drop_vars("q"))
    assert len(partial.fields) == len(full.fields)
    for field, reference in zip(partial.fields, full.fields, strict=True):
        if field.variable == "q":
            # scored as the mirror image 2C − T: skill −1, ACC −1, twice the climate RMSE
            stats = field.scored.stats
            assert field.scored.missing and field.skill == -1.0
            assert stats.acc == -1.0 and field.scored.coverage == 0.0
            assert stats.rmse == pytest.approx(2 * stats.climatology_rmse)
        else:
            assert not field.scored.missing
            assert field.skill == pytest.approx(reference.skill)
    assert len(partial.missing) == 13 * len(LEADS)


def test_missing_lead_scores_the_floor_and_is_noted(world):
    def forecast(lead: int) -> xr.Dataset | None:
        return None if lead == 48 else world["good"].sel(lead_hours=lead)

    result = score(world, forecast)
    at_48 = [field for field in result.fields if field.lead_hours == 48]
    assert len(at_48) == 69 and all(field.scored.missing for field in at_48)
    assert all(field.skill == -1.0 for field in at_48)
    assert result.notes == ("lead 48 h: absent from the forecast",)
    assert not result.get("z", 500, 72).scored.missing


def test_forecast_on_another_grid_scores_the_floor_for_that_lead(world):
    coarse = observed(Grid.regular(7, 12), LEADS)
    result = score(world, coarse)
    assert all(field.scored.missing for field in result.fields)
    assert "count differs" in result.notes[0]


def test_any_nan_or_inf_withholds_the_field(world):
    forecast = world["good"].copy(deep=True)
    forecast["t"].values[0, 10, :4, :] = np.nan  # t850 at 24 h: 4 of 13 rows
    forecast["u"].values[0, 10, 2, 3] = np.inf  # u850 at 24 h: one cell of 312
    result = score(world, forecast, Era5Config(lead_hours=(24,)))
    t850, u850 = result.get("t", 850, 24), result.get("u", 850, 24)
    assert t850.scored.missing and t850.skill == -1.0
    assert t850.scored.coverage == pytest.approx(9 / 13)
    assert u850.scored.missing and u850.skill == -1.0
    assert u850.scored.coverage == pytest.approx(311 / 312)
    assert not result.get("v", 850, 24).scored.missing


def test_reads_one_lead_at_a_time_in_order(world):
    calls: list[tuple[str, int]] = []

    def reader(name: str):
        def read(lead: int) -> xr.Dataset:
            calls.append((name, lead))
            return world[name].sel(lead_hours=lead)
        return read

    score_era5(reader("good"), reader("truth"), reader("climatology"),
               Era5Config(lead_hours=(24, 48)))
    assert calls == [("truth", 24), ("climatology", 24), ("good", 24),
                     ("truth", 48), ("climatology", 48), ("good", 48)]


def test_missing_truth_raises(world):
    with pytest.raises(ReferenceDataError, match="truth has no data for lead 240"):
        score_era5(world["good"], world["truth"].sel(lead_hours=LEADS[:-1]), world["climatology"])


def test_skill_matches_the_xarray_metric(world):
    result = score(world, world["poor"], Era5Config(lead_hours=(72,)))
    pick = {"lead_hours": 72, "level": 500}
    expected = skill(world["poor"]["z"].sel(pick), world["truth"]["z"].sel(pick),
                     world["climatology"]["z"].sel(pick))
    assert result.get("z", 500, 72).skill == pytest.approx(float(expected), rel=1e-5)


def test_records_are_flat_complete_and_unique(world):
    result = score(world, world["good"].drop_vars("msl"), Era5Config(lead_hours=(24, 48)))
    records = result.records()
    assert len(records) == 69 * 2 * 6
    keys = {(r.kind, r.variable, r.level, r.lead_hours, r.metric) for r in records}
    assert len(keys) == len(records)
    assert all(r.kind is ScoreKind.ERA5 and np.isfinite(r.value) for r in records)
    msl = {r.metric: r.value for r in records if (r.variable, r.lead_hours) == ("msl", 24)}
    assert msl[Metric.MISSING] == 1.0 and msl[Metric.SKILL] == -1.0 and msl[Metric.ACC] == -1.0
    assert {r.level for r in records if r.variable == "2t"} == {0}

"""ERA5 scoring of one lead at a time on synthetic canonical datasets (moving waves)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.scoring.coverage import ReferenceDataError
from gaia.tasks.defined_tasks.weather.scoring.era5 import score_era5_lead
from gaia.tasks.defined_tasks.weather.scoring.fields import as_lead_fields
from gaia.tasks.defined_tasks.weather.scoring.metrics import skill
from gaia.tasks.defined_tasks.weather.scoring.records import Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.scoring.rollup import RollupConfig, weighted_skill
from gaia.tasks.defined_tasks.weather.variables import ERA5_LEAD_HOURS
from tests.fixtures.scoring import missing_of, score_leads
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


def score(world, forecast, leads=LEADS):
    return score_leads(forecast, world["truth"], world["climatology"], leads)


def fields_of(results):
    return [field for lead in results for field in lead.fields]


def at(world, name: str, lead: int):
    return as_lead_fields(world[name].sel(lead_hours=lead))


def test_better_forecast_scores_higher(world):
    good, poor = score(world, world["good"]), score(world, world["poor"])
    assert weighted_skill(good, RollupConfig()) > weighted_skill(poor, RollupConfig()) > -1.0
    for good_field, poor_field in zip(fields_of(good), fields_of(poor), strict=True):
        assert good_field.scored.stats.rmse < poor_field.scored.stats.rmse


def test_persistence_skill_falls_with_lead(world):
    result = score(world, world["persistence"])
    for variable, level in [("z", 500), ("t", 850), ("2t", None)]:
        skills = [lead.get(variable, level).skill for lead in result]
        assert all(np.diff(skills) < 0), (variable, skills)
        assert skills[0] > 0.5 > skills[-1]


def test_missing_variable_scores_the_floor_and_keeps_the_rest(world):
    full = score(world, world["good"])
    partial = score(world, world["good"].drop_vars("q"))
    assert len(fields_of(partial)) == len(fields_of(full))
    for field, reference in zip(fields_of(partial), fields_of(full), strict=True):
        if field.variable == "q":
            # scored as the mirror image 2C − T: skill −1, ACC −1, twice the climate RMSE
            stats = field.scored.stats
            assert field.scored.missing and field.skill == -1.0
            assert stats.acc == -1.0 and field.scored.coverage == 0.0
            assert stats.rmse == pytest.approx(2 * stats.climatology_rmse)
        else:
            assert not field.scored.missing
            assert field.skill == pytest.approx(reference.skill)
    assert len(missing_of(partial)) == 13 * len(LEADS)
    assert {lead.note for lead in partial} == {None}  # fields withheld, not whole leads


def test_missing_lead_scores_the_floor_and_is_noted(world):
    absent = score_era5_lead(None, at(world, "truth", 48), at(world, "climatology", 48), 48)
    assert absent.lead_hours == 48
    assert len(absent.fields) == 69 and all(field.scored.missing for field in absent.fields)
    assert all(field.skill == -1.0 and field.lead_hours == 48 for field in absent.fields)
    assert absent.note == "lead 48 h: absent from the forecast"
    sent = score_era5_lead(at(world, "good", 72), at(world, "truth", 72),
                           at(world, "climatology", 72), 72)
    assert sent.note is None and not sent.get("z", 500).scored.missing


def test_forecast_on_another_grid_scores_the_floor_for_that_lead(world):
    coarse = as_lead_fields(observed(Grid.regular(7, 12), [24]).sel(lead_hours=24))
    result = score_era5_lead(coarse, at(world, "truth", 24), at(world, "climatology", 24), 24)
    assert all(field.scored.missing for field in result.fields)
    assert result.note is not None and "count differs" in result.note


def test_any_nan_or_inf_withholds_the_field(world):
    forecast = world["good"].copy(deep=True)
    forecast["t"].values[0, 10, :4, :] = np.nan  # t850 at 24 h: 4 of 13 rows
    forecast["u"].values[0, 10, 2, 3] = np.inf  # u850 at 24 h: one cell of 312
    [result] = score(world, forecast, leads=(24,))
    t850, u850 = result.get("t", 850), result.get("u", 850)
    assert t850.scored.missing and t850.skill == -1.0
    assert t850.scored.coverage == pytest.approx(9 / 13)
    assert u850.scored.missing and u850.skill == -1.0
    assert u850.scored.coverage == pytest.approx(311 / 312)
    assert not result.get("v", 850).scored.missing


def test_only_the_fields_asked_for_are_scored(world):
    fields = (("2t", None), ("z", 500))
    result = score_era5_lead(at(world, "good", 24), at(world, "truth", 24),
                             at(world, "climatology", 24), 24, fields)
    assert [(f.variable, f.level) for f in result.fields] == list(fields)
    with pytest.raises(KeyError, match="q700 at 24 h"):
        result.get("q", 700)


def test_truth_or_climatology_lacking_a_field_raises(world):
    truth = as_lead_fields(world["truth"].drop_vars("msl").sel(lead_hours=240))
    with pytest.raises(ReferenceDataError, match="lacks msl at lead 240 h"):
        score_era5_lead(at(world, "good", 240), truth, at(world, "climatology", 240), 240)


def test_skill_matches_the_xarray_metric(world):
    [result] = score(world, world["poor"], leads=(72,))
    pick = {"lead_hours": 72, "level": 500}
    expected = skill(world["poor"]["z"].sel(pick), world["truth"]["z"].sel(pick),
                     world["climatology"]["z"].sel(pick))
    assert result.get("z", 500).skill == pytest.approx(float(expected), rel=1e-5)


def test_records_are_flat_complete_and_unique(world):
    result = score(world, world["good"].drop_vars("msl"), leads=(24, 48))
    records = [record for lead in result for record in lead.records()]
    assert len(records) == 69 * 2 * 6
    keys = {(r.kind, r.variable, r.level, r.lead_hours, r.metric) for r in records}
    assert len(keys) == len(records)
    assert all(r.kind is ScoreKind.ERA5 and np.isfinite(r.value) for r in records)
    msl = {r.metric: r.value for r in records if (r.variable, r.lead_hours) == ("msl", 24)}
    assert msl[Metric.MISSING] == 1.0 and msl[Metric.SKILL] == -1.0 and msl[Metric.ACC] == -1.0
    assert {r.level for r in records if r.variable == "2t"} == {0}

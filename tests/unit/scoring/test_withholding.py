"""Withholding never pays, and no score record is ever non-finite (SCORING.md section 1).

The whole scoring path (day-1, ERA5, roll-up) on small synthetic grids: a forecast with
fields, leads or cells withheld (absent, NaN, ±inf) never scores higher than the same
forecast sent, however poor the forecast; fields of ±3e38 (finite in float32, their
squares not) or 1e300 are scored without a single inf or NaN record.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.scoring.day1 import score_day1
from gaia.tasks.defined_tasks.weather.scoring.records import ComponentRecord
from gaia.tasks.defined_tasks.weather.scoring.rollup import Rollup, lead_skills, roll_up
from tests.fixtures.scoring import score_leads
from tests.fixtures.synthetic_weather import Grid, climatology, observed, with_noise

GRID = Grid.regular(9, 18)
DAY1_LEADS = [6, 12, 24]
ERA5_LEADS = (24, 48, 96, 168, 240)
LEADS = sorted({*DAY1_LEADS, *ERA5_LEADS})
SPEED = 0.3  # deg/h: persistence is skilful at 24 h and worse than climatology from 72 h
FIELDS = (("2t", None), ("msl", None), ("10v", None), ("z", 500), ("t", 850), ("q", 700),
          ("u", 250))  # 7 of the 69 fields: fast


@pytest.fixture(scope="module")
def world() -> dict[str, xr.Dataset]:
    truth = observed(GRID, LEADS, speed_deg_per_hour=SPEED)
    return {
        "truth": truth,
        "climatology": climatology(GRID, LEADS),
        "gfs": with_noise(truth.sel(lead_hours=DAY1_LEADS), 0.15, seed=3),
        "persistence": observed(GRID, LEADS, at_hours=0),
    }


def scored(world, forecast: xr.Dataset) -> tuple[Rollup, list[ComponentRecord]]:
    day1 = score_day1(forecast, world["gfs"], world["climatology"])
    leads = score_leads(forecast, world["truth"], world["climatology"], ERA5_LEADS, FIELDS)
    rollup = roll_up(lead_skills(leads), day1.verdict, all_leads=ERA5_LEADS)
    era5_records = [record for lead in leads for record in lead.records()]
    return rollup, day1.records() + era5_records + rollup.records()


def with_values(forecast: xr.Dataset, value: float, lead_from: int, cells=slice(None)):
    """``forecast`` with ``value`` in ``cells`` of every field at every lead ≥ ``lead_from``."""
    changed = forecast.copy(deep=True)
    late = changed["lead_hours"].values >= lead_from
    for variable in changed.data_vars:
        values = changed[variable].values
        values[late, ..., cells] = value
    return changed


# --- the persistence miner of issue 13 ---------------------------------------------------

def test_persistence_with_every_lead_from_96_h_withheld_scores_lower(world):
    sent, _ = scored(world, world["persistence"])
    assert not sent.gated and 0.0 < sent.score < 0.5  # skilful early, poor late
    withheld, _ = scored(world, with_values(world["persistence"], np.nan, lead_from=96))
    assert withheld.score < sent.score
    dropped, _ = scored(world, world["persistence"].sel(lead_hours=[6, 12, 24, 48]))
    assert dropped.score == pytest.approx(withheld.score)


def test_persistence_with_a_field_missing_scores_lower(world):
    sent, _ = scored(world, world["persistence"])
    later = world["persistence"].copy(deep=True)
    later["q"].values[later["lead_hours"].values >= 96] = np.nan
    for forecast in (world["persistence"].drop_vars("q"), later):
        withheld, _ = scored(world, forecast)
        assert withheld.score < sent.score


@pytest.mark.parametrize("value", [3e38, -3e38])
def test_persistence_with_values_of_3e38_scores_lower_and_finite(world, value):
    single = world["persistence"].astype(np.float32)
    sent, _ = scored(world, single)
    garbage, records = scored(world, with_values(single, value, lead_from=96))
    assert garbage.score < sent.score
    assert all(math.isfinite(r.value) for r in records)


# --- withholding any subset never raises the score --------------------------------------

def random_forecast(world, rng: np.random.Generator) -> xr.Dataset:
    """Persistence or a noisy truth, from skilful to worse than climatology."""
    base = world["persistence"] if rng.random() < 0.5 else world["truth"]
    return with_noise(base, float(rng.uniform(0.1, 1.5)), seed=int(rng.integers(1 << 30)))


def withhold(forecast: xr.Dataset, rng: np.random.Generator) -> xr.Dataset:
    """``forecast`` with 1 to 4 random fields, leads, slabs or cells withheld."""
    changed = forecast.copy(deep=True)
    variables = [str(v) for v in changed.data_vars]
    for _ in range(int(rng.integers(1, 5))):
        kind = rng.integers(4)
        variable = str(rng.choice(variables))
        values = changed[variable].values
        lead = int(rng.integers(len(LEADS)))
        if kind == 0 and len(variables) > 1:
            changed = changed.drop_vars(variable)
            variables.remove(variable)
        elif kind == 1:
            values[lead] = np.nan
        elif kind == 2:
            cells = rng.random(values[lead].shape) < 0.05
            values[lead][cells] = rng.choice([np.nan, np.inf, -np.inf])
        else:
            keep = [x for x in changed["lead_hours"].values.tolist() if x != LEADS[lead]]
            changed = changed.sel(lead_hours=keep)
    return changed


@pytest.mark.parametrize("seed", range(4))
def test_withholding_any_subset_never_raises_the_score(world, seed):
    rng = np.random.default_rng(seed)
    forecast = random_forecast(world, rng)
    sent, _ = scored(world, forecast)
    for _ in range(3):
        withheld, records = scored(world, withhold(forecast, rng))
        assert withheld.score <= sent.score
        assert withheld.weighted_skill <= sent.weighted_skill + 1e-12  # before the gate
        assert all(math.isfinite(r.value) for r in records)


# --- no record is ever non-finite -------------------------------------------------------

@pytest.mark.parametrize(("value", "dtype"), [
    (3e38, np.float32), (-3e38, np.float32), (np.nan, np.float32), (np.inf, np.float32),
    (-np.inf, np.float64), (1e300, np.float64),
])
def test_no_record_is_ever_non_finite(world, value, dtype):
    forecast = world["persistence"].astype(dtype)
    every_other_cell = slice(None, None, 2)  # half of each row: sums of every kind overflow
    _, records = scored(world, with_values(forecast, value, lead_from=0, cells=every_other_cell))
    assert records and all(math.isfinite(r.value) for r in records)


def test_records_stay_finite_where_the_reference_has_no_anomaly(world):
    # truth = climatology: skill and clone ratio would divide by zero
    flat = {**world, "truth": world["climatology"],
            "gfs": world["climatology"].sel(lead_hours=DAY1_LEADS)}
    _, records = scored(flat, world["persistence"])
    assert all(math.isfinite(r.value) for r in records)

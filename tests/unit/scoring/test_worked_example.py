"""The worked example of SCORING.md, number for number (sections "Worked example" A, B, D)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.scoring.day1 import Day1Result
from gaia.tasks.defined_tasks.weather.scoring.metrics import (
    acc,
    bias,
    field_statistics,
    latitude_weights,
    rmse,
    skill,
)
from gaia.tasks.defined_tasks.weather.scoring.records import Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.scoring.rollup import (
    lead_skills,
    progressive_roll_up,
    roll_up,
)
from tests.fixtures.scoring import era5_result

LAT = [-60.0, 0.0, 60.0]
LON = [0.0, 90.0, 180.0, 270.0]


def grid_field(values) -> xr.DataArray:
    return xr.DataArray(np.asarray(values, dtype=float), dims=("latitude", "longitude"),
                        coords={"latitude": LAT, "longitude": LON})


def test_part_a_metrics_of_one_field():
    climatology = grid_field(np.full((3, 4), 280.0))
    truth = climatology + grid_field([[2, -2, 2, -2]] * 3)
    forecast = truth + grid_field([[1, -1, 1, -1], [2, 2, 2, 2], [0, 0, 0, 4]])
    assert latitude_weights(np.array(LAT)).values == pytest.approx([0.75, 1.5, 0.75])
    assert float(rmse(forecast, truth)) == pytest.approx(math.sqrt(3.25))  # 1.8028
    assert float(bias(forecast, truth)) == pytest.approx(1.25)
    assert float(acc(forecast, truth, climatology)) == pytest.approx(4 / math.sqrt(29))  # 0.7428
    assert float(rmse(climatology, truth)) == pytest.approx(2.0)
    assert float(skill(forecast, truth, climatology)) == pytest.approx(1 - math.sqrt(3.25) / 2)
    # the ERA5 path gives the same numbers from one set of sums
    stats = field_statistics(forecast.values, truth.values, climatology.values,
                             latitude_weights(np.array(LAT)).values)
    assert (stats.mse, stats.mean_error) == pytest.approx((3.25, 1.25))
    assert (stats.forecast_anomaly_sq, stats.truth_anomaly_sq, stats.anomaly_product) == (
        pytest.approx((7.25, 4.0, 4.0))
    )
    assert stats.skill == pytest.approx(0.0986, abs=1e-4)


EXAMPLE_SKILLS = {
    ("2t", None, 24): 0.6, ("2t", None, 48): 0.4,
    ("z", 500, 24): 0.8, ("z", 500, 48): 0.5,
    ("z", 850, 24): 0.7, ("z", 850, 48): None,
}
EXAMPLE_ERA5 = era5_result(EXAMPLE_SKILLS)


def day1(passed: bool = True, clone: bool = False) -> Day1Result:
    return Day1Result(fields=(), score=0.9, passed=passed, clone=clone, reasons=())


def test_part_b_roll_up():
    # skill (0.15·(0.6+0.4) + 0.10·(0.8+0.5) + 0.10·(0.7+0)) / (2·(0.15+0.10+0.10)) = 0.35/0.70
    # score (1 + 0.5) / 2
    result = roll_up(EXAMPLE_ERA5, day1())
    assert result.weighted_skill == pytest.approx(0.5)
    assert result.score == pytest.approx(0.75) and not result.gated
    assert [(r.kind, r.variable, r.level, r.lead_hours, r.metric) for r in result.records()] == [
        (ScoreKind.ROLLUP, "all", 0, 0, Metric.SCORE),
        (ScoreKind.ROLLUP, "all", 0, 0, Metric.SKILL),
        (ScoreKind.ROLLUP, "all", 0, 0, Metric.COVERAGE),
    ]
    assert result.era5_share == 1.0  # fully scored: the day-1 score (0.9) no longer counts


@pytest.mark.parametrize(("passed", "clone"), [(False, False), (True, True)])
def test_part_b_day1_gate(passed, clone):
    result = roll_up(EXAMPLE_ERA5, day1(passed, clone))
    assert result.gated and result.score == 0.0
    assert result.weighted_skill == pytest.approx(0.5)


def test_part_d_a_young_run():
    # day-1 score d = 0.6; K = 10 leads (24 … 240 h), only lead 24 h scored so far
    day1_only = progressive_roll_up([], day1_score=0.6, eligible=True,
                                    all_leads=range(24, 241, 24))
    assert (day1_only.era5_share, day1_only.weighted_skill) == (0.0, pytest.approx(0.6))
    assert day1_only.score == pytest.approx(0.8)  # (1 + 0.6) / 2
    # lead 24 h of part B: skill_1 = (0.15·0.6 + 0.10·0.8 + 0.10·0.7) / 0.35 = 0.24/0.35
    first = [s for s in lead_skills(EXAMPLE_ERA5) if s.lead_hours == 24]
    one = progressive_roll_up(first, day1_score=0.6, eligible=True, all_leads=range(24, 241, 24))
    assert one.era5_share == pytest.approx(0.1)
    # S = 0.9·0.6 + 0.1·0.685714 = 0.608571, score = 0.804286
    assert one.weighted_skill == pytest.approx(0.9 * 0.6 + 0.1 * 0.24 / 0.35)
    assert one.score == pytest.approx(0.804286, abs=1e-6)
    # the two leads of part B out of K = 2: S = skill_run = 0.5, score 0.75 as in part B
    both = progressive_roll_up(lead_skills(EXAMPLE_ERA5), day1_score=0.6, eligible=True,
                               all_leads=(24, 48))
    assert (both.weighted_skill, both.score) == (pytest.approx(0.5), pytest.approx(0.75))
    gated = progressive_roll_up(first, day1_score=0.6, eligible=False, all_leads=range(24, 241, 24))
    assert gated.score == 0.0 and gated.weighted_skill == pytest.approx(one.weighted_skill)

"""The worked example of SCORING.md, number for number (sections "Worked example" A, B, D, E)."""

from __future__ import annotations

import math
from dataclasses import astuple

import numpy as np
import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.scoring.coverage import score_field
from gaia.tasks.defined_tasks.weather.scoring.day1 import Day1Verdict
from gaia.tasks.defined_tasks.weather.scoring.metrics import (
    acc,
    bias,
    field_statistics,
    latitude_weights,
    rmse,
    skill,
)
from gaia.tasks.defined_tasks.weather.scoring.records import Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.scoring.rollup import RollupConfig, lead_skills, roll_up
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


def day1(passed: bool = True, clone: bool = False, score: float = 0.9) -> Day1Verdict:
    return Day1Verdict(score, passed=passed, clone=clone)


def test_part_b_roll_up():
    # skill (0.15·(0.6+0.4) + 0.10·(0.8+0.5) + 0.10·(0.7−1)) / (2·(0.15+0.10+0.10)) = 0.25/0.70
    # score (1 + 0.357143) / 2
    result = roll_up(lead_skills(EXAMPLE_ERA5), day1(), all_leads=(24, 48))
    assert result.weighted_skill == pytest.approx(0.25 / 0.70)
    assert result.score == pytest.approx(0.678571, abs=1e-6) and not result.gated
    assert [(r.kind, r.variable, r.level, r.lead_hours, r.metric) for r in result.records()] == [
        (ScoreKind.ROLLUP, "all", 0, 0, Metric.SCORE),
        (ScoreKind.ROLLUP, "all", 0, 0, Metric.SKILL),
        (ScoreKind.ROLLUP, "all", 0, 0, Metric.COVERAGE),
    ]
    assert result.era5_share == 1.0  # fully scored: the day-1 score (0.9) no longer counts


@pytest.mark.parametrize(("passed", "clone"), [(False, False), (True, True)])
def test_part_b_day1_gate(passed, clone):
    result = roll_up(lead_skills(EXAMPLE_ERA5), day1(passed, clone), all_leads=(24, 48))
    assert result.gated and result.score == 0.0
    assert result.weighted_skill == pytest.approx(0.25 / 0.70)


def test_part_d_a_young_run():
    # day-1 score d = 0.6; K = 10 leads (24 … 240 h), only lead 24 h scored so far
    day1_only = roll_up([], day1(score=0.6), all_leads=range(24, 241, 24))
    assert (day1_only.era5_share, day1_only.weighted_skill) == (0.0, pytest.approx(0.6))
    assert day1_only.score == pytest.approx(0.8)  # (1 + 0.6) / 2
    # lead 24 h of part B: skill_1 = (0.15·0.6 + 0.10·0.8 + 0.10·0.7) / 0.35 = 0.24/0.35
    first = [s for s in lead_skills(EXAMPLE_ERA5) if s.lead_hours == 24]
    one = roll_up(first, day1(score=0.6), all_leads=range(24, 241, 24))
    assert one.era5_share == pytest.approx(0.1)
    # S = 0.9·0.6 + 0.1·0.685714 = 0.608571, score = 0.804286
    assert one.weighted_skill == pytest.approx(0.9 * 0.6 + 0.1 * 0.24 / 0.35)
    assert one.score == pytest.approx(0.804286, abs=1e-6)
    # the two leads of part B out of K = 2: S = skill_run = 0.357143, score 0.678571 as in B
    both = roll_up(lead_skills(EXAMPLE_ERA5), day1(score=0.6), all_leads=(24, 48))
    assert both.weighted_skill == pytest.approx(0.25 / 0.70)
    assert both.score == pytest.approx(0.678571, abs=1e-6)
    gated = roll_up(first, day1(False, score=0.6), all_leads=range(24, 241, 24))
    assert gated.score == 0.0 and gated.weighted_skill == pytest.approx(one.weighted_skill)


def part_a_fields(dtype=np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    climatology = np.full((3, 4), 280.0)
    truth = climatology + np.array([[2.0, -2.0, 2.0, -2.0]] * 3)
    forecast = truth + np.array([[1, -1, 1, -1], [2, 2, 2, 2], [0, 0, 0, 4]], dtype=float)
    weights = latitude_weights(np.array(LAT)).values
    return forecast.astype(dtype), truth.astype(dtype), climatology.astype(dtype), weights


def test_part_e1_a_withheld_cell_withholds_the_field_at_the_floor():
    forecast, truth, climatology, weights = part_a_fields()
    forecast[2, 1] = np.nan
    scored = score_field(forecast, truth, climatology, weights, "example")
    assert scored.missing and scored.coverage == pytest.approx(11 / 12)
    assert scored.skill == -1.0 < 0.0986
    # the mirror image 2C − T: RMSE 2·2, bias −2⟨T′⟩ = 0, ACC −1
    assert (scored.stats.rmse, scored.stats.bias, scored.stats.acc) == (4.0, 0.0, -1.0)


def test_part_e1_a_float32_forecast_of_3e38_is_scored_finite_at_the_floor():
    forecast, truth, climatology, weights = part_a_fields(np.float32)
    forecast[1, 0] = 3e38  # an equator cell (weight 1.5)
    scored = score_field(forecast, truth, climatology, weights, "example")
    assert not scored.missing and scored.skill == -1.0
    assert scored.stats.rmse == pytest.approx(math.sqrt(1.5 / 12) * 3e38, rel=1e-6)  # 1.06e38
    assert all(math.isfinite(value) for value in astuple(scored.stats))


PERSISTENCE_2T = {24: 0.6, 48: 0.2, 72: -0.3, 96: -1.7}
ONLY_2T = RollupConfig(variable_weights={"2t": 1.0})


def run_score_of(skills: dict[int, float | None], **kwargs) -> float:
    era5 = era5_result({("2t", None, lead): skill for lead, skill in skills.items()})
    return roll_up(lead_skills(era5), day1(score=0.7),
                   all_leads=tuple(PERSISTENCE_2T), config=ONLY_2T, **kwargs).score


def test_part_e2_withholding_leads_or_a_field_never_pays():
    sent = run_score_of(PERSISTENCE_2T)
    assert sent == pytest.approx((1 + (0.6 + 0.2 - 0.3 - 1) / 4) / 2)  # 0.4375
    from_96 = run_score_of({**PERSISTENCE_2T, 96: None})
    assert from_96 == pytest.approx(0.4375)  # no better; the old rule gave 0.5625
    from_72 = run_score_of({**PERSISTENCE_2T, 72: None, 96: None})
    assert from_72 == pytest.approx(0.35) and from_72 < sent
    missing_24 = run_score_of({**PERSISTENCE_2T, 24: None})
    assert missing_24 == pytest.approx(0.2375)


def test_part_e2_a_forecast_withdrawn_after_day1_loses_the_provisional_share():
    first = {24: PERSISTENCE_2T[24]}
    assert run_score_of(first) == pytest.approx((1 + 0.75 * 0.7 + 0.25 * 0.6) / 2)  # 0.8375
    assert run_score_of(first, rest_withheld=True) == pytest.approx(0.2)  # S = −0.6

"""Roll-up rules beyond the worked example."""

from __future__ import annotations

import pytest

from gaia.tasks.defined_tasks.weather.scoring.rollup import RollupConfig, run_score, weighted_skill
from tests.fixtures.scoring import era5_result as result


def test_one_ruined_field_is_floored():
    # skill -9 counts as -1: (0.15·0.5 + 0.15·(-1)) / 0.30
    era5 = result({("2t", None, 24): 0.5, ("2t", None, 48): -9.0})
    assert weighted_skill(era5, RollupConfig()) == pytest.approx(-0.25)


def test_lead_weights_apply():
    era5 = result({("msl", None, 24): 0.8, ("msl", None, 48): 0.2})
    config = RollupConfig(lead_weights={24: 3.0, 48: 1.0})
    assert weighted_skill(era5, config) == pytest.approx((3 * 0.8 + 0.2) / 4)


def test_unknown_variable_or_lead_is_an_error():
    era5 = result({("msl", None, 24): 0.8})
    with pytest.raises(KeyError, match="msl"):
        weighted_skill(era5, RollupConfig(variable_weights={"2t": 1.0}))
    with pytest.raises(KeyError, match="24"):
        weighted_skill(era5, RollupConfig(lead_weights={48: 1.0}))


def test_all_missing_scores_zero():
    era5 = result({("q", 700, 24): None, ("q", 850, 24): None})
    assert weighted_skill(era5, RollupConfig()) == 0.0


def test_run_score_ranks_any_scored_forecast_above_a_gated_one():
    assert run_score(-1.0, eligible=True) == 0.0
    assert run_score(-0.4, eligible=True) == pytest.approx(0.3)
    assert run_score(-0.4, eligible=True) < run_score(-0.3, eligible=True) < run_score(1.0, True)
    assert run_score(0.9, eligible=False) == 0.0

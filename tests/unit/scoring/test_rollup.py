"""Roll-up rules beyond the worked example."""

from __future__ import annotations

import pytest

from gaia.tasks.defined_tasks.weather.scoring.day1 import Day1Verdict
from gaia.tasks.defined_tasks.weather.scoring.rollup import (
    LeadSkill,
    RollupConfig,
    era5_share,
    roll_up,
    run_score,
    weighted_skill,
)
from tests.fixtures.scoring import era5_result as result


def passed(score: float) -> Day1Verdict:
    return Day1Verdict(score, passed=True, clone=False)


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


def test_all_missing_scores_the_floor():
    era5 = result({("q", 700, 24): None, ("q", 850, 24): None})
    assert weighted_skill(era5, RollupConfig()) == -1.0


def test_run_score_ranks_any_scored_forecast_above_a_gated_one():
    assert run_score(-1.0, eligible=True) == 0.0
    assert run_score(-0.4, eligible=True) == pytest.approx(0.3)
    assert run_score(-0.4, eligible=True) < run_score(-0.3, eligible=True) < run_score(1.0, True)
    assert run_score(0.9, eligible=False) == 0.0


def test_the_era5_share_follows_the_lead_weights():
    config = RollupConfig(lead_weights={24: 3.0, 48: 1.0})
    assert era5_share({24}, (24, 48), config) == pytest.approx(0.75)
    assert era5_share({24, 48}, (24, 48), config) == 1.0
    assert era5_share(set(), (24, 48), config) == 0.0
    with pytest.raises(ValueError, match="72"):
        era5_share({72}, (24, 48), config)


def test_a_young_run_blends_day1_and_the_leads_so_far():
    # K = 4 leads, 1 scored with skill 0.2 on msl; d = 0.8: S = 0.75·0.8 + 0.25·0.2 = 0.65
    rollup = roll_up([LeadSkill("msl", 0, 24, 0.2)], passed(0.8), all_leads=(24, 48, 72, 96))
    assert rollup.weighted_skill == pytest.approx(0.65)
    assert rollup.score == pytest.approx(0.825)
    assert rollup.era5_share == 0.25


def test_a_fully_scored_run_ignores_day1_quality():
    skills = [LeadSkill("msl", 0, 24, 0.2), LeadSkill("msl", 0, 48, -0.4)]
    low = roll_up(skills, passed(0.2), all_leads=(24, 48))
    high = roll_up(skills, passed(1.0), all_leads=(24, 48))
    assert low.score == high.score == pytest.approx((1 + (-0.1)) / 2)


def test_a_day1_score_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="day-1"):
        roll_up([], passed(1.5), all_leads=(24,))


def test_a_non_finite_stored_skill_counts_at_the_floor():
    # databases written before records were kept finite hold inf and NaN skills
    for bad in (float("nan"), float("-inf"), float("inf")):
        skills = [LeadSkill("msl", 0, 24, 0.6), LeadSkill("2t", 0, 24, bad)]
        rollup = roll_up(skills, passed(0.5), all_leads=(24,))
        assert rollup.weighted_skill == pytest.approx((0.10 * 0.6 - 0.15) / 0.25)


def test_a_withdrawn_forecast_counts_its_unscored_leads_at_the_floor():
    # K = 4, lead 24 h scored at 0.2, d = 0.8: S = 0.75·(−1) + 0.25·0.2 = −0.7
    skills = [LeadSkill("msl", 0, 24, 0.2)]
    withdrawn = roll_up(skills, passed(0.8), all_leads=(24, 48, 72, 96), rest_withheld=True)
    assert withdrawn.weighted_skill == pytest.approx(-0.7)
    assert withdrawn.score == pytest.approx(0.15) and withdrawn.era5_share == 0.25
    nothing = roll_up([], passed(0.8), all_leads=(24, 48), rest_withheld=True)
    assert nothing.score == 0.0
    every = [LeadSkill("msl", 0, lead, 0.2) for lead in (24, 48)]
    assert roll_up(every, passed(0.8), all_leads=(24, 48),
                   rest_withheld=True).score == pytest.approx(0.6)

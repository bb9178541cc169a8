"""The run and response state tables as pure data: exactly the plan's moves, nothing else."""

from __future__ import annotations

import itertools

import pytest

from gaia.tasks.defined_tasks.weather.states import (
    BEFORE_FAN_OUT_RUN_STATUSES,
    ROLLED_UP_RUN_STATUSES,
    RUN_CHAIN,
    RUN_TRANSITIONS,
    TERMINAL_RESPONSE_STATUSES,
    TERMINAL_RUN_STATUSES,
    VALID_TRANSITIONS,
    is_allowed,
    run_may_move,
    run_sources,
    run_status_after,
)
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus as S
from gaia.tasks.defined_tasks.weather.states import RunStatus as R

PLAN_RESPONSE_MOVES = {
    (S.CREATED, S.FETCH_INITIATED), (S.CREATED, S.FAILED),
    (S.FETCH_INITIATED, S.INFERENCE_RUNNING), (S.FETCH_INITIATED, S.FAILED),
    (S.INFERENCE_RUNNING, S.FORECAST_READY), (S.INFERENCE_RUNNING, S.FAILED),
    (S.FORECAST_READY, S.DAY1_SCORING), (S.FORECAST_READY, S.FAILED),
    (S.DAY1_SCORING, S.DAY1_SCORED), (S.DAY1_SCORING, S.FAILED),
    (S.DAY1_SCORED, S.ERA5_SCORING),
    (S.ERA5_SCORING, S.ERA5_SCORED), (S.ERA5_SCORING, S.FAILED),
}
PLAN_CHAIN = (R.CREATED, R.GFS_DOWNLOADING, R.GFS_READY, R.QUERYING_MINERS, R.SCORING_DAY1,
              R.AWAITING_ERA5, R.SCORING_ERA5, R.COMPLETED)
ROLL_UP_PHASE = PLAN_CHAIN[3:]


def _plan_run_moves() -> set[tuple[R, R]]:
    """Steps before fan-out, forward along the chain after it, error from any unfinished."""
    steps = set(itertools.pairwise(PLAN_CHAIN[:4]))
    forward = {(a, b) for i, a in enumerate(ROLL_UP_PHASE) for b in ROLL_UP_PHASE[i + 1:]}
    errors = {(s, R.ERROR) for s in PLAN_CHAIN[:-1]}
    return steps | forward | errors


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_a_response_moves_only_as_the_plan_lists(current: S, target: S) -> None:
    assert is_allowed(current, target) is ((current, target) in PLAN_RESPONSE_MOVES)


def test_every_response_status_has_a_row_and_the_terminal_ones_are_the_plans() -> None:
    assert set(VALID_TRANSITIONS) == set(S)
    assert TERMINAL_RESPONSE_STATUSES == {S.ERA5_SCORED, S.FAILED}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(R, R)))
def test_a_run_moves_only_along_the_plans_chain(current: R, target: R) -> None:
    assert run_may_move(current, target) is ((current, target) in _plan_run_moves())


def test_the_run_tables_follow_the_plan() -> None:
    assert RUN_CHAIN == PLAN_CHAIN
    assert set(RUN_TRANSITIONS) == set(R)
    assert TERMINAL_RUN_STATUSES == {R.COMPLETED, R.ERROR}
    assert BEFORE_FAN_OUT_RUN_STATUSES == set(PLAN_CHAIN[:3])
    assert ROLLED_UP_RUN_STATUSES == set(ROLL_UP_PHASE[:-1])
    assert all(not RUN_TRANSITIONS[s] for s in TERMINAL_RUN_STATUSES)


@pytest.mark.parametrize(("target", "expected"), [
    (R.CREATED, set()),
    (R.GFS_DOWNLOADING, {R.CREATED}),
    (R.GFS_READY, {R.GFS_DOWNLOADING}),
    (R.QUERYING_MINERS, {R.GFS_READY}),
    (R.SCORING_DAY1, {R.QUERYING_MINERS}),
    (R.AWAITING_ERA5, {R.QUERYING_MINERS, R.SCORING_DAY1}),
    (R.SCORING_ERA5, {R.QUERYING_MINERS, R.SCORING_DAY1, R.AWAITING_ERA5}),
    (R.COMPLETED, set(ROLLED_UP_RUN_STATUSES)),
    (R.ERROR, set(PLAN_CHAIN[:-1])),
])
def test_run_sources_are_the_statuses_the_table_leaves_from(target: R, expected: set[R]) -> None:
    if expected:
        assert run_sources(target) == expected
    else:
        with pytest.raises(ValueError, match="no run status may move to created"):
            run_sources(target)


def test_run_sources_narrowed_to_a_phase() -> None:
    assert run_sources(R.ERROR, BEFORE_FAN_OUT_RUN_STATUSES) == BEFORE_FAN_OUT_RUN_STATUSES
    assert run_sources(R.ERROR, ROLLED_UP_RUN_STATUSES) == ROLLED_UP_RUN_STATUSES
    assert run_sources(R.SCORING_ERA5, {R.SCORING_DAY1, R.GFS_READY}) == {R.SCORING_DAY1}
    with pytest.raises(ValueError, match="among"):
        run_sources(R.GFS_READY, ROLLED_UP_RUN_STATUSES)


@pytest.mark.parametrize(("current", "statuses", "expected"), [
    (R.QUERYING_MINERS, [S.CREATED, S.FETCH_INITIATED], R.QUERYING_MINERS),
    (R.QUERYING_MINERS, [S.INFERENCE_RUNNING, S.FORECAST_READY], R.SCORING_DAY1),
    (R.QUERYING_MINERS, [S.FAILED, S.FAILED], R.COMPLETED),
    (R.QUERYING_MINERS, [], R.COMPLETED),
    (R.SCORING_DAY1, [S.DAY1_SCORED, S.FAILED], R.AWAITING_ERA5),
    (R.SCORING_DAY1, [S.DAY1_SCORED, S.ERA5_SCORING], R.SCORING_ERA5),
    (R.AWAITING_ERA5, [S.DAY1_SCORED, S.ERA5_SCORING], R.SCORING_ERA5),
    (R.SCORING_ERA5, [S.ERA5_SCORED, S.FAILED], R.COMPLETED),
    # never back: the one committed forecast failing leaves the run in day-1 scoring ...
    (R.SCORING_DAY1, [S.CREATED, S.FAILED], R.SCORING_DAY1),
    # ... and one miner's ERA5 scoring finishing before another's begins leaves it scoring
    (R.SCORING_ERA5, [S.DAY1_SCORED, S.ERA5_SCORED], R.SCORING_ERA5),
])
def test_a_fanned_out_run_follows_its_responses_forward(
    current: R, statuses: list[S], expected: R,
) -> None:
    assert run_status_after(current, statuses) is expected


@pytest.mark.parametrize("current", sorted(set(R) - ROLLED_UP_RUN_STATUSES))
def test_a_run_before_fan_out_or_finished_ignores_its_responses(current: R) -> None:
    assert run_status_after(current, [S.ERA5_SCORED]) is current
    assert run_status_after(current, [S.CREATED, S.FORECAST_READY]) is current

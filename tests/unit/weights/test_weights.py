"""Weights from run scores: the SCORING.md example (part C) and the rules around it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gaia.config import Settings
from gaia.validator.weights import (
    NoPositiveScores,
    Registration,
    RunScores,
    average_scores,
    compute_weights,
    to_weights,
    version_key,
)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


EXAMPLE_RUNS = [
    RunScores(1, at(1), {"A": 0.9}),  # outside the window of 3
    RunScores(2, at(2), {"A": 0.5, "B": 0.3, "C": -0.2, "D": 0.7}),  # D: previous registration
    RunScores(3, at(3), {"A": 0.4, "B": 0.5, "E": 0.9}),  # E is not registered now
    RunScores(4, at(4), {"A": 0.6, "B": 0.4, "C": 0.3, "D": 0.9}),
]
EXAMPLE_REGISTRATIONS = [
    Registration("A", 0, datetime(2026, 10, 1, tzinfo=UTC)),
    Registration("B", 1, datetime(2026, 10, 1, tzinfo=UTC)),
    Registration("C", 2, datetime(2026, 10, 1, tzinfo=UTC)),
    Registration("D", 3, at(3, 18)),
]


def test_worked_example_averages():
    averages = average_scores(EXAMPLE_RUNS, EXAMPLE_REGISTRATIONS, window=3)
    assert averages == pytest.approx({"A": 0.5, "B": 0.4, "C": 0.1, "D": 0.3})


def test_worked_example_weights():
    vector = compute_weights(EXAMPLE_RUNS, EXAMPLE_REGISTRATIONS, window=3, power=2.0)
    assert vector.uids == (0, 1, 2, 3)
    # squares 0.25, 0.16, 0.01, 0.09 over their sum 0.51
    assert vector.weights == pytest.approx((0.25 / 0.51, 0.16 / 0.51, 0.01 / 0.51, 0.09 / 0.51))
    assert sum(vector.weights) == pytest.approx(1.0)


def test_missing_runs_count_zero():
    runs = [RunScores(1, at(1), {"A": 0.6, "B": 0.6}), RunScores(2, at(2), {"A": 0.6})]
    registrations = [Registration(h, uid, at(1, 0)) for uid, h in enumerate("AB")]
    assert average_scores(runs, registrations, window=2) == pytest.approx({"A": 0.6, "B": 0.3})


def test_fewer_runs_than_the_window_still_divide_by_the_window():
    registrations = [Registration("A", 0, at(1, 0))]
    runs = [RunScores(1, at(1), {"A": 0.8})]
    assert average_scores(runs, registrations, window=4) == {"A": 0.2}


def test_unknown_hotkeys_get_nothing():
    runs = [RunScores(1, at(1), {"A": 0.5, "ghost": 1.0})]
    vector = compute_weights(runs, [Registration("A", 7, at(1, 0))], window=1)
    assert vector.uids == (7,) and vector.weights == (1.0,)


def test_new_holder_of_a_uid_inherits_nothing():
    # uid 5 belonged to "old"; "new" registered on it after run 1
    runs = [RunScores(1, at(1), {"old": 0.9}), RunScores(2, at(2), {"new": 0.3, "A": 0.3})]
    registrations = [Registration("new", 5, at(1, 18)), Registration("A", 0, at(1, 0))]
    vector = compute_weights(runs, registrations, window=2)
    assert dict(zip(vector.uids, vector.weights, strict=True)) == pytest.approx({0: 0.5, 5: 0.5})


def test_transform_is_monotone_and_ignores_negatives():
    weights = to_weights({"a": 0.1, "b": 0.2, "c": 0.4, "d": -0.3}, power=2.0)
    assert weights["d"] == 0.0 and weights["a"] < weights["b"] < weights["c"]


def test_all_zero_scores_raise():
    with pytest.raises(NoPositiveScores):
        to_weights({"a": 0.0, "b": -1.0})


def test_duplicate_uids_are_refused():
    registrations = [Registration("A", 1, at(1)), Registration("B", 1, at(1))]
    with pytest.raises(ValueError, match="once"):
        compute_weights([RunScores(1, at(2), {"A": 1.0})], registrations, window=1)


def test_the_window_has_one_source_a_week_of_daily_runs():
    # compute_weights takes the window from the caller only; the setting is its one source
    assert Settings().validator.weights_window_runs == 7
    with pytest.raises(TypeError):
        compute_weights([RunScores(1, at(2), {"A": 1.0})], [Registration("A", 0, at(1))])  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("version", "key"), [("0.1.0", 100), ("1.2.3", 10203), ("2.0.0rc1", 20000), ("10.99.99", 109999)]
)
def test_version_key(version, key):
    assert version_key(version) == key


@pytest.mark.parametrize("bad", ["1.2", "v1.2.3", "1.100.0", "1.2.100"])
def test_version_key_rejects(bad):
    with pytest.raises(ValueError, match="version"):
        version_key(bad)


def test_version_key_is_monotone():
    versions = ["0.1.0", "0.1.9", "0.2.0", "0.10.0", "1.0.0", "1.0.1"]
    keys = [version_key(v) for v in versions]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)

"""The fallback weights: the whole weight on one uid when no score is positive, and why."""

from __future__ import annotations

from datetime import UTC, datetime

from gaia.validator.weights import (
    Registration,
    RunScores,
    WeightVector,
    compute_weights,
    weights_to_submit,
)

EARLY = datetime(2026, 10, 1, tzinfo=UTC)
REGISTERED = [Registration("A", 1, EARLY), Registration("B", 2, EARLY)]
RUN = datetime(2026, 11, 1, 12, tzinfo=UTC)


def test_no_run_yet_gives_the_fallback_uid_the_whole_weight() -> None:
    chosen = weights_to_submit([], REGISTERED, window=7, fallback_uid=0)
    assert chosen.vector == WeightVector((0,), (1.0,))
    assert chosen.fallback_reason == (
        "no live run has day-1 scores yet: the whole weight goes to fallback uid 0")


def test_scores_that_are_all_zero_or_below_give_the_fallback() -> None:
    runs = [RunScores(1, RUN, {"A": 0.0, "B": -0.4}), RunScores(2, RUN, {"C": 0.9})]
    chosen = weights_to_submit(runs, REGISTERED, window=7, fallback_uid=5)
    assert chosen.vector == WeightVector((5,), (1.0,))
    assert chosen.fallback_reason is not None
    assert chosen.fallback_reason.startswith(
        "no registered hotkey has a positive score over the latest 2 runs")


def test_a_positive_score_gives_the_weights_of_the_scores() -> None:
    runs = [RunScores(1, RUN, {"A": 0.2, "B": 0.0})]
    chosen = weights_to_submit(runs, REGISTERED, window=7, fallback_uid=0)
    assert chosen.fallback_reason is None
    assert chosen.vector == compute_weights(runs, REGISTERED, window=7)
    assert chosen.vector == WeightVector((1, 2), (1.0, 0.0))

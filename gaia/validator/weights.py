"""Run scores → chain weights (pure functions; the caller queries and submits).

1. Take the ``window`` latest live runs whose day-1 scoring is over (hindcasts never
   count); a young run's score is provisional and sharpens as ERA5 leads arrive. The
   window has one source, ``validator.weights_window_runs`` (7).
2. For each currently registered hotkey: clip each run score to ≥ 0; a run without a
   score for the hotkey, or initialised before the hotkey's current registration,
   counts 0; average over the window.
3. Raise to ``power`` and normalise to sum 1 (monotone: a higher average never gets a
   lower weight).
4. Map hotkeys to their current UIDs. Scores are keyed by hotkey and filtered by
   registration time, so a previous holder of a UID (or an earlier registration of the
   same hotkey) never passes its scores on; a hotkey not registered now gets nothing.

5. When no registered hotkey averages above 0 (a fresh database before its first day-1
   scores, or every miner failing), the whole weight goes to ``fallback_uid``
   (``validator.fallback_weight_uid``, 0 by default: the subnet owner's uid, the usual
   convention), so the validator still sets weights and the chain does not count it inactive
   (:func:`weights_to_submit`).

SCORING.md has a worked example that tests/unit/weights reproduces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

DEFAULT_POWER = 2.0
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


class NoPositiveScores(ValueError):
    """Every registered hotkey averages 0: there is nothing to normalise."""


@dataclass(frozen=True)
class RunScores:
    run_id: int
    queried_at: datetime  # when the run asked its miners (its fan-out)
    scores: Mapping[str, float]  # hotkey -> rolled-up score of that run


@dataclass(frozen=True)
class Registration:
    hotkey: str
    uid: int
    registered_at: datetime  # start of the hotkey's current registration


@dataclass(frozen=True)
class WeightVector:
    uids: tuple[int, ...]  # ascending
    weights: tuple[float, ...]  # sum 1


def average_scores(
    runs: Iterable[RunScores], registrations: Iterable[Registration], *, window: int
) -> dict[str, float]:
    """Mean clipped score per registered hotkey over the latest ``window`` runs."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    latest = sorted(runs, key=lambda run: run.queried_at, reverse=True)[:window]
    averages: dict[str, float] = {}
    for registration in registrations:
        total = sum(
            max(run.scores.get(registration.hotkey, 0.0), 0.0)
            for run in latest
            if run.queried_at >= registration.registered_at
        )
        averages[registration.hotkey] = total / window if latest else 0.0
    return averages


def to_weights(averages: Mapping[str, float], power: float = DEFAULT_POWER) -> dict[str, float]:
    """s^power / Σ s^power; raises :class:`NoPositiveScores` when every score is 0."""
    if power <= 0:
        raise ValueError(f"power must be positive, got {power}")
    raised = {hotkey: max(score, 0.0) ** power for hotkey, score in averages.items()}
    total = sum(raised.values())
    if total <= 0:
        raise NoPositiveScores("no registered hotkey has a positive average score")
    return {hotkey: value / total for hotkey, value in raised.items()}


def compute_weights(
    runs: Iterable[RunScores],
    registrations: Iterable[Registration],
    *,
    window: int,
    power: float = DEFAULT_POWER,
) -> WeightVector:
    """Weights by current UID from run scores (see module doc)."""
    registered = list(registrations)
    uids = {registration.hotkey: registration.uid for registration in registered}
    if len(set(uids.values())) != len(registered):
        raise ValueError("registrations must name each hotkey and each uid once")
    weights = to_weights(average_scores(runs, registered, window=window), power)
    pairs = sorted((uids[hotkey], weight) for hotkey, weight in weights.items())
    return WeightVector(tuple(uid for uid, _ in pairs), tuple(weight for _, weight in pairs))


@dataclass(frozen=True)
class ChosenWeights:
    vector: WeightVector
    fallback_reason: str | None  # why the fallback was submitted; None: from the scores


def weights_to_submit(
    runs: Iterable[RunScores],
    registrations: Iterable[Registration],
    *,
    window: int,
    fallback_uid: int,
    power: float = DEFAULT_POWER,
) -> ChosenWeights:
    """The weights from the scores, or the whole weight on ``fallback_uid`` (and why) when
    no registered hotkey has a positive score."""
    runs = list(runs)
    try:
        return ChosenWeights(compute_weights(runs, registrations, window=window, power=power),
                             None)
    except NoPositiveScores:
        why = (f"no registered hotkey has a positive score over the latest {len(runs)} runs"
               if runs else "no live run has day-1 scores yet")
        return ChosenWeights(WeightVector((fallback_uid,), (1.0,)),
                             f"{why}: the whole weight goes to fallback uid {fallback_uid}")


def version_key(version: str) -> int:
    """major·10000 + minor·100 + patch of ``"M.m.p[suffix]"``; minor and patch < 100."""
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f"version {version!r} does not start with MAJOR.MINOR.PATCH")
    major, minor, patch = (int(part) for part in match.groups())
    if minor >= 100 or patch >= 100:
        raise ValueError(f"version {version!r}: minor and patch must be below 100")
    return major * 10_000 + minor * 100 + patch

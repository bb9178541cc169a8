"""Scoring one field with an explicit coverage policy.

A forecast field that is absent, or whose share of non-finite values exceeds the
tolerance, scores as the baseline: the climatology stands in for it (so its skill is 0
and its ACC 0) and it is recorded as missing. Non-finite cells within the tolerance are
filled with the climatology. Non-finite truth or climatology is the validator's data
problem, never the miner's: it raises :class:`ReferenceDataError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.tasks.defined_tasks.weather.scoring.metrics import FieldStatistics, field_statistics


class ReferenceDataError(ValueError):
    """Truth, reference or climatology is absent or not finite."""


@dataclass(frozen=True)
class ScoredField:
    stats: FieldStatistics
    coverage: float  # fraction of finite forecast values; 0 when the field is absent
    missing: bool  # scored as the baseline


def score_field(
    forecast: np.ndarray | None,
    truth: np.ndarray,
    climatology: np.ndarray,
    weights: np.ndarray,
    max_nonfinite_fraction: float,
    label: str,
) -> ScoredField:
    """Statistics of one field; ``label`` names it in error messages."""
    if forecast is None:
        return _baseline(truth, climatology, weights, coverage=0.0, label=label)
    stats = field_statistics(forecast, truth, climatology, weights)
    if stats.is_finite():
        return ScoredField(stats, coverage=1.0, missing=False)
    _require_finite(truth, climatology, label)
    finite = np.isfinite(forecast)
    coverage = float(finite.mean())
    if 1.0 - coverage > max_nonfinite_fraction:
        return _baseline(truth, climatology, weights, coverage=coverage, label=label)
    filled = np.where(finite, forecast, climatology)
    return ScoredField(field_statistics(filled, truth, climatology, weights), coverage, False)


def _baseline(
    truth: np.ndarray, climatology: np.ndarray, weights: np.ndarray, coverage: float, label: str
) -> ScoredField:
    stats = field_statistics(climatology, truth, climatology, weights)
    if not stats.is_finite():
        _require_finite(truth, climatology, label)
    return ScoredField(stats, coverage=coverage, missing=True)


def _require_finite(truth: np.ndarray, climatology: np.ndarray, label: str) -> None:
    if not np.isfinite(truth).all():
        raise ReferenceDataError(f"truth/reference field {label} has non-finite values")
    if not np.isfinite(climatology).all():
        raise ReferenceDataError(f"climatology field {label} has non-finite values")

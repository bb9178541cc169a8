"""Scoring one field: a forecast field is scored as sent, or withheld and put at the floor.

No submitted-forecast rule may ever make sending nothing the better answer. A forecast
field that is absent, of the wrong shape, has any non-finite value, or whose sums
overflow float64 is *withheld*: it is recorded as missing and scored as the worst forecast
counts, the skill floor. Its statistics are those of the climatology's mirror image of
the truth, F = 2C − T (F′ = −T′): skill exactly −1, ACC −1, RMSE twice the climatology's,
so every stored number of a withheld field is finite and no better than a sent one can
score after the roll-up's clip. Non-finite truth or climatology is the validator's data
problem, never the miner's: it raises :class:`ReferenceDataError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.tasks.defined_tasks.weather.data.lead_fields import FieldKey, LeadFields
from gaia.tasks.defined_tasks.weather.scoring.metrics import FieldStatistics, field_statistics

SKILL_FLOOR = -1.0  # the lowest skill a field counts with; a withheld field's skill


class ReferenceDataError(ValueError):
    """Truth, reference or climatology is absent or not finite."""


@dataclass(frozen=True)
class ScoredField:
    stats: FieldStatistics
    coverage: float  # fraction of finite forecast values; 0 when the field is absent
    missing: bool  # withheld: scored at the floor

    @property
    def skill(self) -> float:
        """Skill against the truth's reference, clipped to [SKILL_FLOOR, 1]; the floor when
        withheld (also where the reference has no anomaly to score against)."""
        if self.missing:
            return SKILL_FLOOR
        return float(np.clip(self.stats.skill, SKILL_FLOOR, 1.0))


def score_field(
    forecast: np.ndarray | None,
    truth: np.ndarray,
    climatology: np.ndarray,
    weights: np.ndarray,
    label: str,
) -> ScoredField:
    """Statistics of one field; ``label`` names it in error messages."""
    if forecast is None:
        return _withheld(truth, climatology, weights, coverage=0.0, label=label)
    stats = field_statistics(forecast, truth, climatology, weights)
    if stats.is_finite():  # NaN or inf anywhere in the inputs would make a sum non-finite
        return ScoredField(stats, coverage=1.0, missing=False)
    _require_finite(truth, climatology, label)
    coverage = float(np.isfinite(forecast).mean())
    return _withheld(truth, climatology, weights, coverage=coverage, label=label)


def score_lead_field(
    forecast: LeadFields | None,
    truth: LeadFields,
    climatology: LeadFields,
    key: FieldKey,
    weights: np.ndarray,
    label: str,
    truth_name: str = "truth",
) -> tuple[ScoredField, np.ndarray | None]:
    """Field ``key`` of one lead, scored; also the forecast values scored (None when the
    forecast lacks the field or sent it in another shape: that is withholding it).

    The references must hold the field: if not, :class:`ReferenceDataError`."""
    truth_values, clim_values = truth.get(key), climatology.get(key)
    if truth_values is None or clim_values is None:
        raise ReferenceDataError(f"{truth_name} or climatology lacks {label}")
    values = None if forecast is None else forecast.get(key)
    if values is not None and values.shape != truth_values.shape:
        values = None  # a field of the wrong shape is not a forecast of this field
    return score_field(values, truth_values, clim_values, weights, label), values


def _withheld(
    truth: np.ndarray, climatology: np.ndarray, weights: np.ndarray, coverage: float, label: str
) -> ScoredField:
    baseline = field_statistics(climatology, truth, climatology, weights)
    if not baseline.is_finite():
        _require_finite(truth, climatology, label)
        raise ReferenceDataError(f"truth/climatology field {label} overflows float64")
    anomaly_sq = baseline.truth_anomaly_sq
    # F = 2C − T: F − T = −2T′ (and ⟨C − T⟩ = −⟨T′⟩), F′ = −T′
    mirror = FieldStatistics(mse=4.0 * anomaly_sq, mean_error=2.0 * baseline.mean_error,
                             forecast_anomaly_sq=anomaly_sq, truth_anomaly_sq=anomaly_sq,
                             anomaly_product=-anomaly_sq)
    return ScoredField(mirror, coverage=coverage, missing=True)


def _require_finite(truth: np.ndarray, climatology: np.ndarray, label: str) -> None:
    if not np.isfinite(truth).all():
        raise ReferenceDataError(f"truth/reference field {label} has non-finite values")
    if not np.isfinite(climatology).all():
        raise ReferenceDataError(f"climatology field {label} has non-finite values")

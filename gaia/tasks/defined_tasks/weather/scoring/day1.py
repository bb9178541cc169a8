"""Day-1 score: a quick quality gate against the GFS forecast from the same init.

Inputs are, per lead (int hours after the init time), the miner's forecast, the GFS
reference forecast and the climatology at the same valid times: each a mapping
``lead_hours -> LeadFields`` or a canonical dataset with a ``lead_hours`` dim
(``fields.with_lead_hours`` converts a valid-time ``time`` dim). For each day-1 field and lead: coverage, physical range, latitude-weighted RMSE,
bias and ACC against the reference, a quality in [0, 1] and a clone ratio. A withheld
field (absent, wrong shape, any non-finite value) has quality 0 and fails the day; its
records are finite (``coverage.py``). SCORING.md gives every formula and default.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
import xarray as xr

from gaia.tasks.defined_tasks.weather.scoring.coverage import (
    ReferenceDataError,
    ScoredField,
    score_lead_field,
)
from gaia.tasks.defined_tasks.weather.scoring.fields import (
    LEAD_DIM,
    LeadFields,
    align_to,
    as_lead_fields,
)
from gaia.tasks.defined_tasks.weather.scoring.metrics import latitude_weights
from gaia.tasks.defined_tasks.weather.scoring.records import (
    SUMMARY_LEAD,
    SUMMARY_VARIABLE,
    SURFACE_LEVEL,
    ComponentRecord,
    Metric,
    ScoreKind,
    field_label,
    level_label,
)
from gaia.tasks.defined_tasks.weather.variables import DAY1_LEAD_HOURS, UNITS

FieldKey = tuple[str, int | None]
Leads: TypeAlias = Mapping[int, LeadFields] | xr.Dataset

DAY1_FIELDS: tuple[FieldKey, ...] = (
    ("2t", None), ("msl", None), ("10u", None), ("10v", None), ("z", 500), ("t", 850),
)

# A clone ratio is a distance: far beyond 1 means "not a clone"; the cap keeps it finite
# where the reference has no anomaly to divide by.
MAX_CLONE_RATIO = 1e12

# Plausible values in SI units; z is geopotential (m2 s-2), so heights in metres fail.
DEFAULT_RANGES: Mapping[FieldKey, tuple[float, float]] = {
    ("2t", None): (170.0, 350.0),
    ("msl", None): (85_000.0, 110_000.0),
    ("10u", None): (-100.0, 100.0),
    ("10v", None): (-100.0, 100.0),
    ("z", 500): (43_000.0, 61_000.0),
    ("t", 850): (200.0, 330.0),
}


@dataclass(frozen=True)
class Day1Config:
    lead_hours: tuple[int, ...] = DAY1_LEAD_HOURS
    fields: tuple[FieldKey, ...] = DAY1_FIELDS
    ranges: Mapping[FieldKey, tuple[float, float]] = field(
        default_factory=lambda: dict(DEFAULT_RANGES)
    )
    clone_ratio_threshold: float = 0.005
    min_score: float = 0.2


@dataclass(frozen=True)
class Day1Field:
    variable: str
    level: int | None
    lead_hours: int
    scored: ScoredField  # statistics against the GFS reference
    value_range: tuple[float, float] | None  # finite min and max; None when none
    range_ok: bool

    @property
    def quality(self) -> float:
        """Skill against the reference relative to climatology, clipped to [0, 1]; 0 when
        withheld."""
        return max(self.scored.skill, 0.0)

    @property
    def clone_ratio(self) -> float:
        """MSE(forecast, reference) / ⟨(reference − climatology)²⟩, at most MAX_CLONE_RATIO."""
        stats = self.scored.stats
        if stats.mse == 0:
            return 0.0
        if stats.truth_anomaly_sq == 0:
            return MAX_CLONE_RATIO
        return min(stats.mse / stats.truth_anomaly_sq, MAX_CLONE_RATIO)

    def records(self) -> list[ComponentRecord]:
        stats = self.scored.stats
        values = {
            Metric.COVERAGE: self.scored.coverage,
            Metric.MISSING: float(self.scored.missing),
            Metric.RANGE_OK: float(self.range_ok),
            Metric.RMSE: stats.rmse,
            Metric.BIAS: stats.bias,
            Metric.ACC: stats.acc,
            Metric.CLONE_RATIO: self.clone_ratio,
            Metric.QUALITY: self.quality,
        }
        level = level_label(self.level)
        return [
            ComponentRecord(ScoreKind.DAY1, self.variable, level, self.lead_hours, metric, value)
            for metric, value in values.items()
        ]


@dataclass(frozen=True)
class Day1Verdict:
    """What the roll-up needs of day-1, and what a response row keeps of it.

    Three facts rather than one status: a clone is judged apart from passing (a forecast can
    be both a failure and a clone, and the reasons name each), and the score blends into the
    roll-up whatever the gate says."""

    score: float  # mean quality over every (field, lead), in [0, 1]
    passed: bool  # complete, plausible and score >= min_score
    clone: bool  # a near-copy of the reference

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"the day-1 score must be in [0, 1], got {self.score}")

    @property
    def eligible(self) -> bool:
        """True when ERA5 scores may count: passed and not a clone."""
        return self.passed and not self.clone


@dataclass(frozen=True)
class Day1Result:
    fields: tuple[Day1Field, ...]
    score: float  # mean quality over every (field, lead), in [0, 1]
    passed: bool  # complete, plausible and score >= min_score
    clone: bool  # a near-copy of the reference
    reasons: tuple[str, ...]  # why it failed or was flagged; empty when eligible

    @property
    def verdict(self) -> Day1Verdict:
        return Day1Verdict(self.score, self.passed, self.clone)

    @property
    def eligible(self) -> bool:
        """True when ERA5 scores may count: passed and not a clone."""
        return self.verdict.eligible

    def records(self) -> list[ComponentRecord]:
        records = [record for day1_field in self.fields for record in day1_field.records()]
        summary = {Metric.SCORE: self.score, Metric.PASSED: float(self.passed),
                   Metric.CLONE: float(self.clone)}
        records += [
            ComponentRecord(ScoreKind.DAY1, SUMMARY_VARIABLE, SURFACE_LEVEL, SUMMARY_LEAD, m, v)
            for m, v in summary.items()
        ]
        return records


def score_day1(
    forecast: Leads,
    reference: Leads,
    climatology: Leads,
    config: Day1Config | None = None,
) -> Day1Result:
    """Day-1 verdict of one miner's forecast against the GFS reference (see module doc)."""
    config = config or Day1Config()
    forecasts, references = _by_lead(forecast, "forecast"), _by_lead(reference, "reference")
    climatologies = _by_lead(climatology, "climatology")
    scored: list[Day1Field] = []
    for lead in config.lead_hours:
        reference_lead = _lead(references, lead, "reference")
        grid = reference_lead.grid
        climatology_lead = align_to(_lead(climatologies, lead, "climatology"), grid, "climatology")
        forecast_lead = forecasts.get(lead)
        if forecast_lead is not None:
            forecast_lead = align_to(forecast_lead, grid, "forecast")
        weights = latitude_weights(grid.lat).to_numpy()
        for variable, level in config.fields:
            scored.append(_score_one(
                forecast_lead, reference_lead, climatology_lead, (variable, level), lead,
                weights, config,
            ))
    return _verdict(tuple(scored), config)


def _by_lead(source: Leads, name: str) -> Mapping[int, LeadFields]:
    """Lead hours -> that lead's fields (a dataset's leads are converted when read)."""
    if not isinstance(source, xr.Dataset):
        return source
    if LEAD_DIM not in source.dims:
        raise ValueError(f"{name} needs a {LEAD_DIM!r} dim; dims {dict(source.sizes)}")
    return _DatasetLeads(source)


class _DatasetLeads(Mapping[int, LeadFields]):
    def __init__(self, dataset: xr.Dataset) -> None:
        self._dataset = dataset
        self._leads = [int(lead) for lead in dataset[LEAD_DIM].to_numpy()]

    def __getitem__(self, lead: int) -> LeadFields:
        if lead not in self._leads:
            raise KeyError(lead)
        return as_lead_fields(self._dataset.sel({LEAD_DIM: lead}))

    def __iter__(self) -> Iterator[int]:
        return iter(self._leads)

    def __len__(self) -> int:
        return len(self._leads)


def _lead(leads: Mapping[int, LeadFields], lead: int, name: str) -> LeadFields:
    if lead not in leads:
        raise ReferenceDataError(f"{name} has no lead {lead} h")
    return leads[lead]


def _score_one(
    forecast: LeadFields | None,
    reference: LeadFields,
    climatology: LeadFields,
    key: FieldKey,
    lead: int,
    weights: np.ndarray,
    config: Day1Config,
) -> Day1Field:
    variable, level = key
    label = f"{field_label(variable, level)} at lead {lead} h"
    scored, values = score_lead_field(forecast, reference, climatology, key, weights, label,
                                      truth_name="reference")
    value_range = None if values is None else _finite_range(values)
    bounds = config.ranges.get(key)
    range_ok = not scored.missing and value_range is not None and (
        bounds is None or bounds[0] <= value_range[0] and value_range[1] <= bounds[1]
    )
    return Day1Field(variable, level, lead, scored, value_range, range_ok)


def _finite_range(values: np.ndarray) -> tuple[float, float] | None:
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


def _verdict(fields: tuple[Day1Field, ...], config: Day1Config) -> Day1Result:
    reasons = [reason for day1_field in fields for reason in _field_reasons(day1_field, config)]
    score = float(np.mean([day1_field.quality for day1_field in fields])) if fields else 0.0
    if score < config.min_score:
        reasons.append(f"score {score:.3f} below the minimum {config.min_score}")
    passed = not reasons
    ratios = [f.clone_ratio for f in fields if not f.scored.missing]
    median_ratio = float(np.median(ratios)) if ratios else float("inf")
    clone = median_ratio < config.clone_ratio_threshold
    if clone:
        reasons.append(
            f"clone of the GFS reference: median distance {median_ratio:.2e} of the reference "
            f"anomaly variance (threshold {config.clone_ratio_threshold})"
        )
    return Day1Result(fields, score, passed, clone, tuple(reasons))


def _field_reasons(day1_field: Day1Field, config: Day1Config) -> list[str]:
    key = (day1_field.variable, day1_field.level)
    label = f"{field_label(*key)} at lead {day1_field.lead_hours} h"
    coverage = day1_field.scored.coverage
    if day1_field.scored.missing and coverage == 0.0:
        return [f"{label}: missing or no finite values"]
    if day1_field.scored.missing and coverage < 1.0:
        return [f"{label}: non-finite values in {1.0 - coverage:.4%} of the field"]
    if day1_field.scored.missing:
        return [f"{label}: values too large to score (their squares overflow float64)"]
    if not day1_field.range_ok and day1_field.value_range is not None:
        low, high = config.ranges[key]
        found_low, found_high = day1_field.value_range
        return [
            f"{label}: values {found_low:.6g}..{found_high:.6g} outside the plausible range "
            f"{low:g}..{high:g} {UNITS[day1_field.variable]} (wrong units?)"
        ]
    return []

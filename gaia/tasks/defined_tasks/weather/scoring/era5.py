"""ERA5 score of one lead: RMSE, bias, ACC and skill against climatology per field.

The caller loops over leads (reading, scoring and releasing one lead before the next keeps
peak memory near one lead's fields) and rolls the per-lead results up (``rollup.py``).

A forecast field that is absent, of the wrong shape or not finite everywhere is
withheld: recorded as missing and scored at the skill floor (skill −1, ACC −1, see
``coverage.py``); a lead the forecast lacks, or on the wrong grid, makes all its fields
withheld. Sending nothing never scores better than any forecast. Stored skills are
clipped to [−1, 1], so every record is finite. Missing truth or climatology fields raise
:class:`ReferenceDataError`: the validator must retry later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.tasks.defined_tasks.weather.scoring.coverage import (
    ScoredField,
    score_lead_field,
)
from gaia.tasks.defined_tasks.weather.scoring.fields import GridMismatch, LeadFields, align_to
from gaia.tasks.defined_tasks.weather.scoring.metrics import latitude_weights
from gaia.tasks.defined_tasks.weather.scoring.records import (
    ComponentRecord,
    Metric,
    ScoreKind,
    field_label,
    level_label,
)
from gaia.tasks.defined_tasks.weather.variables import field_keys

FieldKey = tuple[str, int | None]
ERA5_FIELDS: tuple[FieldKey, ...] = tuple(field_keys())


@dataclass(frozen=True)
class Era5Field:
    variable: str
    level: int | None
    lead_hours: int
    scored: ScoredField

    @property
    def skill(self) -> float:
        """Skill against climatology in [−1, 1]; −1 when withheld."""
        return self.scored.skill

    def records(self) -> list[ComponentRecord]:
        stats = self.scored.stats
        values = {
            Metric.RMSE: stats.rmse,
            Metric.BIAS: stats.bias,
            Metric.ACC: stats.acc,
            Metric.SKILL: self.skill,
            Metric.COVERAGE: self.scored.coverage,
            Metric.MISSING: float(self.scored.missing),
        }
        level = level_label(self.level)
        return [
            ComponentRecord(ScoreKind.ERA5, self.variable, level, self.lead_hours, metric, value)
            for metric, value in values.items()
        ]


@dataclass(frozen=True)
class Era5LeadResult:
    """Every scored field of one lead; ``note`` says why the whole lead was withheld (absent
    from the forecast, or on another grid), None when it was not."""

    lead_hours: int
    fields: tuple[Era5Field, ...]
    note: str | None = None

    @property
    def missing(self) -> tuple[tuple[str, int | None], ...]:
        """(variable, level) of every withheld field (scored at the floor)."""
        return tuple((f.variable, f.level) for f in self.fields if f.scored.missing)

    def get(self, variable: str, level: int | None) -> Era5Field:
        for era5_field in self.fields:
            if (era5_field.variable, era5_field.level) == (variable, level):
                return era5_field
        raise KeyError(f"no ERA5 score for {field_label(variable, level)} at {self.lead_hours} h")

    def records(self) -> list[ComponentRecord]:
        return [record for era5_field in self.fields for record in era5_field.records()]


def score_era5_lead(
    forecast: LeadFields | None,
    truth: LeadFields,
    climatology: LeadFields,
    lead_hours: int,
    fields: tuple[FieldKey, ...] = ERA5_FIELDS,
) -> Era5LeadResult:
    """Score ``fields`` of one lead on the truth's grid (see module doc); ``forecast`` None:
    the forecast lacks the lead."""
    climatology = align_to(climatology, truth.grid, "climatology")
    aligned, note = _forecast(forecast, lead_hours, truth)
    weights = latitude_weights(truth.grid.lat).to_numpy()
    scored = tuple(
        Era5Field(variable, level, lead_hours,
                  _score_field(aligned, truth, climatology, (variable, level), lead_hours,
                               weights))
        for variable, level in fields
    )
    return Era5LeadResult(lead_hours, scored, note)


def _forecast(
    forecast: LeadFields | None, lead: int, truth: LeadFields
) -> tuple[LeadFields | None, str | None]:
    if forecast is None:
        return None, f"lead {lead} h: absent from the forecast"
    try:
        return align_to(forecast, truth.grid, "forecast"), None
    except GridMismatch as mismatch:
        return None, f"lead {lead} h: {mismatch}"


def _score_field(
    forecast: LeadFields | None,
    truth: LeadFields,
    climatology: LeadFields,
    key: FieldKey,
    lead: int,
    weights: np.ndarray,
) -> ScoredField:
    label = f"{field_label(*key)} at lead {lead} h"
    return score_lead_field(forecast, truth, climatology, key, weights, label)[0]

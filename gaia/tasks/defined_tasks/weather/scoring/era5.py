"""ERA5 score: RMSE, bias, ACC and skill against climatology per (variable, level, lead).

Streaming: each input is a *lead source*, a callable ``lead_hours -> LeadFields |
xr.Dataset | None`` returning one lead's fields (a dataset may keep size-1
``time``/``lead_hours`` dims), or a whole dataset with a ``lead_hours`` dim. One lead is read, scored and released
before the next, so peak memory stays near one lead's fields.

A forecast field that is absent, of the wrong shape or not finite everywhere is
withheld: recorded as missing and scored at the skill floor (skill −1, ACC −1, see
``coverage.py``); a lead the forecast lacks, or on the wrong grid, makes all its fields
withheld. Sending nothing never scores better than any forecast. Stored skills are
clipped to [−1, 1], so every record is finite. Missing truth or climatology raises
:class:`ReferenceDataError`: the validator must retry later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import xarray as xr

from gaia.tasks.defined_tasks.weather.scoring.coverage import (
    ReferenceDataError,
    ScoredField,
    score_field,
)
from gaia.tasks.defined_tasks.weather.scoring.fields import (
    LEAD_DIM,
    GridMismatch,
    LeadFields,
    align_to,
    as_lead_fields,
)
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
LeadReader = Callable[[int], LeadFields | xr.Dataset | None]
LeadSource = xr.Dataset | LeadReader

ERA5_LEAD_HOURS: tuple[int, ...] = tuple(range(24, 241, 24))


@dataclass(frozen=True)
class Era5Config:
    lead_hours: tuple[int, ...] = ERA5_LEAD_HOURS
    fields: tuple[FieldKey, ...] = field(default_factory=lambda: tuple(field_keys()))


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
class Era5Result:
    fields: tuple[Era5Field, ...]
    notes: tuple[str, ...]  # whole leads scored as missing, and why

    @property
    def missing(self) -> tuple[tuple[str, int | None, int], ...]:
        """(variable, level, lead_hours) of every withheld field (scored at the floor)."""
        return tuple((f.variable, f.level, f.lead_hours) for f in self.fields if f.scored.missing)

    def get(self, variable: str, level: int | None, lead_hours: int) -> Era5Field:
        for era5_field in self.fields:
            if (era5_field.variable, era5_field.level, era5_field.lead_hours) == (
                variable, level, lead_hours,
            ):
                return era5_field
        raise KeyError(f"no ERA5 score for {field_label(variable, level)} at {lead_hours} h")

    def records(self) -> list[ComponentRecord]:
        return [record for era5_field in self.fields for record in era5_field.records()]


def score_era5(
    forecast: LeadSource,
    truth: LeadSource,
    climatology: LeadSource,
    config: Era5Config | None = None,
) -> Era5Result:
    """Score every configured (field, lead), one lead at a time (see module doc)."""
    config = config or Era5Config()
    read_forecast = as_lead_reader(forecast, "forecast")
    read_truth = as_lead_reader(truth, "truth")
    read_climatology = as_lead_reader(climatology, "climatology")
    fields: list[Era5Field] = []
    notes: list[str] = []
    for lead in config.lead_hours:
        truth_lead = _reference(read_truth, lead, "truth")
        climatology_lead = align_to(
            _reference(read_climatology, lead, "climatology"), truth_lead.grid, "climatology"
        )
        forecast_lead, note = _forecast(read_forecast, lead, truth_lead)
        notes += [note] if note else []
        fields += _score_lead(forecast_lead, truth_lead, climatology_lead, lead, config)
    return Era5Result(tuple(fields), tuple(notes))


def as_lead_reader(source: LeadSource, name: str) -> LeadReader:
    """A callable per lead; a dataset must have a ``lead_hours`` dim (absent lead -> None)."""
    if not isinstance(source, xr.Dataset):
        return source
    if LEAD_DIM not in source.dims:
        raise ValueError(f"{name} dataset needs a {LEAD_DIM!r} dim; dims {dict(source.sizes)}")
    leads = set(source[LEAD_DIM].to_numpy().tolist())
    return lambda lead: source.sel({LEAD_DIM: lead}) if lead in leads else None


def _reference(read: LeadReader, lead: int, name: str) -> LeadFields:
    source = read(lead)
    if source is None:
        raise ReferenceDataError(f"{name} has no data for lead {lead} h")
    return as_lead_fields(source)


def _forecast(
    read: LeadReader, lead: int, truth: LeadFields
) -> tuple[LeadFields | None, str | None]:
    source = read(lead)
    if source is None:
        return None, f"lead {lead} h: absent from the forecast"
    try:
        return align_to(as_lead_fields(source), truth.grid, "forecast"), None
    except GridMismatch as mismatch:
        return None, f"lead {lead} h: {mismatch}"


def _score_lead(
    forecast: LeadFields | None,
    truth: LeadFields,
    climatology: LeadFields,
    lead: int,
    config: Era5Config,
) -> list[Era5Field]:
    weights = latitude_weights(truth.grid.lat).to_numpy()
    scored = []
    for variable, level in config.fields:
        label = f"{field_label(variable, level)} at lead {lead} h"
        truth_values = truth.get((variable, level))
        clim_values = climatology.get((variable, level))
        if truth_values is None or clim_values is None:
            raise ReferenceDataError(f"truth or climatology lacks {label}")
        values = None if forecast is None else forecast.get((variable, level))
        if values is not None and values.shape != truth_values.shape:
            values = None  # a field of the wrong shape is not a forecast of this field
        result = score_field(values, truth_values, clim_values, weights, label)
        scored.append(Era5Field(variable, level, lead, result))
    return scored

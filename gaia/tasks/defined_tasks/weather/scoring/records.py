"""Flat score records: one value per (kind, variable, level, lead, metric), no NULLs.

A table keyed by (run, hotkey, kind, variable, level, lead_hours, metric) stores them as
they are. Surface fields use level 0; summary records (day-1 verdict, roll-up) use
variable ``"all"``, level 0 and lead 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SURFACE_LEVEL = 0
SUMMARY_VARIABLE = "all"
SUMMARY_LEAD = 0


class ScoreKind(StrEnum):
    DAY1 = "day1"
    ERA5 = "era5"
    ROLLUP = "rollup"


class Metric(StrEnum):
    RMSE = "rmse"
    BIAS = "bias"
    ACC = "acc"
    SKILL = "skill"
    COVERAGE = "coverage"  # fraction of finite forecast values
    MISSING = "missing"  # 1.0 when the field scored as the baseline, else 0.0
    RANGE_OK = "range_ok"  # 1.0 when every value is physically plausible
    CLONE_RATIO = "clone_ratio"  # MSE(forecast, reference) / reference anomaly variance
    QUALITY = "quality"  # day-1 per-field score in [0, 1]
    SCORE = "score"
    PASSED = "passed"
    CLONE = "clone"


@dataclass(frozen=True)
class ComponentRecord:
    kind: ScoreKind
    variable: str
    level: int
    lead_hours: int
    metric: Metric
    value: float


def level_label(level: int | None) -> int:
    """The stored level of a field: hPa, or 0 for a surface field."""
    return SURFACE_LEVEL if level is None else level


def field_label(variable: str, level: int | None) -> str:
    """Human name of a field for messages: ``2t``, ``z500``."""
    return variable if level is None else f"{variable}{level}"

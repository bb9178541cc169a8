"""One number per (run, hotkey): weighted ERA5 skill, gated by the day-1 verdict.

skill = Σ w_field · w_lead · clip(skill, floor, 1) / Σ w_field · w_lead over the scored
fields, where a variable's weight is shared equally by its scored levels and leads
weigh equally unless configured; score = (1 + skill) / 2, in [0, 1]. A forecast that
failed day-1 or was flagged as a clone scores 0. SCORING.md gives the defaults and a
worked example.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gaia.tasks.defined_tasks.weather.scoring.day1 import Day1Result
from gaia.tasks.defined_tasks.weather.scoring.era5 import Era5Result
from gaia.tasks.defined_tasks.weather.scoring.records import (
    SUMMARY_LEAD,
    SUMMARY_VARIABLE,
    SURFACE_LEVEL,
    ComponentRecord,
    Metric,
    ScoreKind,
)

DEFAULT_VARIABLE_WEIGHTS: Mapping[str, float] = {
    "z": 0.20, "t": 0.15, "2t": 0.15, "msl": 0.10, "q": 0.10,
    "u": 0.075, "v": 0.075, "10u": 0.075, "10v": 0.075,
}


@dataclass(frozen=True)
class RollupConfig:
    variable_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_VARIABLE_WEIGHTS)
    )
    lead_weights: Mapping[int, float] | None = None  # None: every scored lead weighs 1
    skill_floor: float = -1.0  # one ruined field cannot outweigh the rest


@dataclass(frozen=True)
class Rollup:
    score: float  # what weights use: (1 + weighted_skill) / 2, or 0 when gated
    weighted_skill: float  # before the day-1 gate
    gated: bool  # True when day-1 failed or flagged a clone

    def records(self) -> list[ComponentRecord]:
        return [
            ComponentRecord(ScoreKind.ROLLUP, SUMMARY_VARIABLE, SURFACE_LEVEL, SUMMARY_LEAD,
                            Metric.SCORE, self.score),
            ComponentRecord(ScoreKind.ROLLUP, SUMMARY_VARIABLE, SURFACE_LEVEL, SUMMARY_LEAD,
                            Metric.SKILL, self.weighted_skill),
        ]


def roll_up(era5: Era5Result, day1: Day1Result, config: RollupConfig | None = None) -> Rollup:
    """The run score of one miner (see module doc)."""
    return gated_roll_up(era5, eligible=day1.eligible, config=config)


def gated_roll_up(
    era5: Era5Result, *, eligible: bool, config: RollupConfig | None = None
) -> Rollup:
    """The run score when the day-1 verdict is known only as eligible or not."""
    weighted = weighted_skill(era5, config or RollupConfig())
    return Rollup(score=run_score(weighted, eligible), weighted_skill=weighted,
                  gated=not eligible)


def run_score(weighted: float, eligible: bool) -> float:
    """(1 + weighted skill) / 2 in [0, 1]; 0 when day-1 failed or flagged a clone.

    Any scored forecast, even one worse than climatology (skill < 0), ranks above a gated
    or missing one, and a higher skill always means a higher score."""
    return (1.0 + weighted) / 2.0 if eligible else 0.0


def weighted_skill(era5: Era5Result, config: RollupConfig) -> float:
    """Σ w·clip(skill) / Σ w over the ERA5 fields; an unknown variable is an error."""
    levels_per_variable = Counter(
        variable for variable, _ in {(f.variable, f.level) for f in era5.fields}
    )
    total = weight_sum = 0.0
    for era5_field in era5.fields:
        if era5_field.variable not in config.variable_weights:
            raise KeyError(f"no roll-up weight for variable {era5_field.variable!r}")
        weight = (
            config.variable_weights[era5_field.variable]
            / levels_per_variable[era5_field.variable]
            * _lead_weight(config, era5_field.lead_hours)
        )
        total += weight * float(np.clip(era5_field.skill, config.skill_floor, 1.0))
        weight_sum += weight
    return total / weight_sum if weight_sum > 0 else 0.0


def _lead_weight(config: RollupConfig, lead_hours: int) -> float:
    if config.lead_weights is None:
        return 1.0
    if lead_hours not in config.lead_weights:
        raise KeyError(f"no roll-up weight for lead {lead_hours} h")
    return config.lead_weights[lead_hours]

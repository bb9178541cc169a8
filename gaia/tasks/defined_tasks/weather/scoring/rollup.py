"""One number per (run, hotkey): day-1 quality blended with weighted ERA5 skill, gated by
the day-1 verdict; it exists once day-1 is scored and sharpens as ERA5 leads arrive.

skill_k = Σ w_field · w_lead · clip(skill, −1, 1) / Σ w_field · w_lead over the ERA5
fields of the k leads scored so far, where a variable's weight is shared equally by its
scored levels and leads weigh equally unless configured. With f = the scored leads' share
of the total lead weight (k/K when leads weigh equally) and d the day-1 score in [0, 1]:
S = (1 − f)·d + f·skill_k and score = (1 + S) / 2. A fully scored run (f = 1) scores
(1 + skill_K) / 2; a forecast that failed day-1 or was flagged as a clone scores 0.
Withholding never pays: a withheld field is stored at the floor (−1, ``coverage.py``), a
stored skill that is not finite counts at the floor, and once a forecast can no longer be
scored its unscored leads count at the floor instead of d. SCORING.md gives the defaults
and worked examples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from gaia.tasks.defined_tasks.weather.scoring.coverage import SKILL_FLOOR
from gaia.tasks.defined_tasks.weather.scoring.day1 import Day1Verdict
from gaia.tasks.defined_tasks.weather.scoring.era5 import Era5LeadResult
from gaia.tasks.defined_tasks.weather.scoring.records import (
    SUMMARY_LEAD,
    SUMMARY_VARIABLE,
    SURFACE_LEVEL,
    ComponentRecord,
    Metric,
    ScoreKind,
    level_label,
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


@dataclass(frozen=True)
class LeadSkill:
    """The ERA5 skill of one (variable, level, lead), as stored (level 0 for surface)."""

    variable: str
    level: int
    lead_hours: int
    skill: float


@dataclass(frozen=True)
class Rollup:
    score: float  # what weights use: (1 + weighted_skill) / 2, or 0 when gated
    weighted_skill: float  # S, the blend of day-1 and ERA5 skill, before the day-1 gate
    gated: bool  # True when day-1 failed or flagged a clone
    era5_share: float  # f: the scored ERA5 leads' share of the lead weight, in [0, 1]

    def records(self) -> list[ComponentRecord]:
        values = {Metric.SCORE: self.score, Metric.SKILL: self.weighted_skill,
                  Metric.COVERAGE: self.era5_share}
        return [
            ComponentRecord(ScoreKind.ROLLUP, SUMMARY_VARIABLE, SURFACE_LEVEL, SUMMARY_LEAD,
                            metric, value)
            for metric, value in values.items()
        ]


def roll_up(
    skills: Sequence[LeadSkill],
    day1: Day1Verdict,
    *,
    all_leads: Sequence[int],
    rest_withheld: bool = False,
    config: RollupConfig | None = None,
) -> Rollup:
    """The run score from the day-1 verdict and the ERA5 leads scored so far (module doc).

    ``rest_withheld``: the forecast can no longer be scored (its response failed during
    ERA5 scoring), so every unscored lead counts at the skill floor instead of the day-1
    score; a miner cannot keep its provisional score by withdrawing its forecast."""
    config = config or RollupConfig()
    scored = {s.lead_hours for s in skills}
    share = era5_share(scored, all_leads, config)
    era5_skill = weighted_lead_skill(skills, config) if skills else 0.0
    unscored = SKILL_FLOOR if rest_withheld else day1.score
    blended = (1.0 - share) * unscored + share * era5_skill
    return Rollup(score=run_score(blended, day1.eligible), weighted_skill=blended,
                  gated=not day1.eligible, era5_share=share)


def era5_share(scored: Iterable[int], all_leads: Sequence[int], config: RollupConfig) -> float:
    """Σ λ over the scored leads / Σ λ over all leads; exactly 1 when every lead is scored."""
    scored = set(scored)
    unknown = scored - set(all_leads)
    if unknown:
        raise ValueError(f"scored leads {sorted(unknown)} h are not among {list(all_leads)}")
    total = sum(_lead_weight(config, lead) for lead in sorted(all_leads))
    if total <= 0:
        raise ValueError(f"the ERA5 leads {list(all_leads)} have no weight")
    return sum(_lead_weight(config, lead) for lead in sorted(all_leads) if lead in scored) / total


def run_score(weighted: float, eligible: bool) -> float:
    """(1 + weighted skill) / 2 in [0, 1]; 0 when day-1 failed or flagged a clone.

    Any scored forecast, even one worse than climatology (skill < 0), ranks above a gated
    or missing one, and a higher skill always means a higher score."""
    return (1.0 + weighted) / 2.0 if eligible else 0.0


def lead_skills(leads: Iterable[Era5LeadResult]) -> list[LeadSkill]:
    """The skills of every field of every scored lead, as the roll-up reads them back."""
    return [LeadSkill(f.variable, level_label(f.level), f.lead_hours, f.skill)
            for lead in leads for f in lead.fields]


def weighted_skill(leads: Iterable[Era5LeadResult], config: RollupConfig) -> float:
    """Σ w·clip(skill) / Σ w over the ERA5 fields of ``leads``; an unknown variable is an
    error."""
    return weighted_lead_skill(lead_skills(leads), config)


def weighted_lead_skill(skills: Sequence[LeadSkill], config: RollupConfig) -> float:
    """Σ w·clip(skill) / Σ w over stored skills; an unknown variable is an error.

    The floor stops one ruined field from outweighing the rest; a non-finite stored skill
    (databases written before records were kept finite hold some) counts at the floor."""
    levels_per_variable = Counter(variable for variable, _ in {(s.variable, s.level) for s in skills})
    total = weight_sum = 0.0
    for lead_skill in skills:
        if lead_skill.variable not in config.variable_weights:
            raise KeyError(f"no roll-up weight for variable {lead_skill.variable!r}")
        weight = (
            config.variable_weights[lead_skill.variable]
            / levels_per_variable[lead_skill.variable]
            * _lead_weight(config, lead_skill.lead_hours)
        )
        total += weight * _counted(lead_skill.skill)
        weight_sum += weight
    return total / weight_sum if weight_sum > 0 else 0.0


def _counted(skill: float) -> float:
    return float(np.clip(skill, SKILL_FLOOR, 1.0)) if np.isfinite(skill) else SKILL_FLOOR


def _lead_weight(config: RollupConfig, lead_hours: int) -> float:
    if config.lead_weights is None:
        return 1.0
    if lead_hours not in config.lead_weights:
        raise KeyError(f"no roll-up weight for lead {lead_hours} h")
    return config.lead_weights[lead_hours]

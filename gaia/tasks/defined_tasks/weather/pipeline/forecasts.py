"""What the per-miner steps need to read and score a miner's forecast, behind one protocol.

The implementation (:mod:`gaia.tasks.defined_tasks.weather.pipeline.scoring_service`) reads the
miner's store through verified, signed requests and runs the heavy scoring off the event
loop. Its errors are the queue's outcomes: ``Invalid`` for anything the miner got wrong,
``Retry`` for transport trouble, ``NotReady`` when truth is missing, ``TimedOut`` past a
task's deadline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.scoring.day1 import Day1Verdict
from gaia.tasks.defined_tasks.weather.scoring.records import ComponentRecord

SCORING_SHARE = 0.9
"""Of a scoring job's timeout, what its scoring task may use: the task ends first, so its
own ``TimedOut`` is what the job records, and the rest is left for the database work."""


@dataclass(frozen=True)
class ForecastRef:
    """One miner's forecast for one run, as the validator addresses it."""

    init_time: datetime
    base_url: str
    hotkey: str
    job_id: str
    manifest_hash: str | None = None


@dataclass(frozen=True)
class Day1Outcome:
    records: list[ComponentRecord]  # every component, the audit trail
    verdict: Day1Verdict  # what the response row keeps and the roll-up reads
    reasons: tuple[str, ...]


class ForecastService(Protocol):
    async def commit_manifest(
        self, forecast: ForecastRef, announced_hash: str, grid: Grid
    ) -> str:
        """Fetch and check the signed manifest against the run (its init time and ``grid``,
        the run's, never read from a reference store); returns the hash to commit."""
        ...

    async def score_day1(
        self, forecast: ForecastRef, *, timeout_s: float | None = None
    ) -> Day1Outcome:
        """``timeout_s``: the scoring task's own deadline; past it the task is ``TimedOut``."""
        ...

    async def score_era5_leads(
        self, forecast: ForecastRef, leads: Sequence[int], *, timeout_s: float | None = None
    ) -> list[ComponentRecord]:
        """The ERA5 component records of ``leads`` only (no roll-up)."""
        ...

    async def warm_day1_references(self, init_time: datetime) -> None:
        """Put the run's day-1 references in this host's cache (``Retry`` when a source
        fails; scoring fetches what is missing anyway)."""
        ...

    async def truth_available_until(self) -> datetime:
        """The last valid time ERA5 covers now (read afresh on each call)."""
        ...

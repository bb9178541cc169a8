"""The validator's :class:`ForecastService`: verified reads of miners' stores and scoring.

A thin facade over three modules: day-1 and ERA5 scoring (one or more ERA5 leads per call)
run in a :class:`~gaia.tasks.defined_tasks.weather.pipeline.scoring_pool.ScoringPool`
(``validator.scoring_processes``; 0 runs them in this process), so the workers' event loop
keeps serving other jobs, under their deadline and once more if their process died
(:mod:`~gaia.tasks.defined_tasks.weather.pipeline.scoring_runs`). The tasks themselves are
in :mod:`~gaia.tasks.defined_tasks.weather.pipeline.scoring_tasks`: per miner they read only
the miner's fields, and the references come from the host's reference cache, filled once
per host. Errors come back as the queue's outcomes
(:mod:`~gaia.tasks.defined_tasks.weather.pipeline.scoring_outcomes`).

A commitment is checked against the run's grid, handed in by the caller: no reference
store is read at commit, so an ERA5 outage cannot make an on-time miner late.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from gaia.clock import Now, system_clock
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.data.era5 import Era5Source
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.forecast_reader import (
    ForecastInvalid,
    check_manifest_against_run,
    fetch_verified_manifest,
)
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import Day1Outcome, ForecastRef
from gaia.tasks.defined_tasks.weather.pipeline.scoring_outcomes import as_outcomes
from gaia.tasks.defined_tasks.weather.pipeline.scoring_pool import ScoringPool
from gaia.tasks.defined_tasks.weather.pipeline.scoring_runs import in_pool, in_process
from gaia.tasks.defined_tasks.weather.pipeline.scoring_tasks import (
    ScoringEnvironment,
    TaskResources,
    day1_task,
    era5_task,
    score_day1_of,
    score_era5_of,
    warm_references_of,
)
from gaia.tasks.defined_tasks.weather.scoring.records import ComponentRecord

__all__ = ["ScoringEnvironment", "ScoringService"]


class ScoringService:
    """``clock``: the validator's; tasks get its time at submission (the reference cache
    records use and prunes by it)."""

    def __init__(
        self, env: ScoringEnvironment, signed: SignedClient, *, processes: int,
        clock: Now = system_clock,
    ) -> None:
        self._env, self._signed, self._clock = env, signed, clock
        self._era5 = Era5Source(env.data.era5_url)
        self._pool = ScoringPool(processes) if processes > 0 else None
        self._resources = TaskResources(signed, env.reference_cache(clock))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    async def warm_day1_references(self, init_time: datetime) -> None:
        """Decode the run's GFS day-1 reference and read its climatology into this host's
        cache (the seed job does it once per run, so no miner's task waits for it)."""
        with as_outcomes():
            await warm_references_of(self._env, self._resources.references, init_time, ())

    async def truth_available_until(self) -> datetime:
        """Read from the store's root attributes on every call: a store opened once would
        keep the ``valid_time_stop`` of that moment for the life of the process."""
        with as_outcomes():
            return await asyncio.to_thread(self._era5.available_until)

    async def commit_manifest(
        self, forecast: ForecastRef, announced_hash: str, grid: Grid
    ) -> str:
        with as_outcomes():
            signed = await fetch_verified_manifest(
                self._signed, forecast.base_url, forecast.job_id, forecast.hotkey
            )
            if signed.manifest_hash != announced_hash:
                raise ForecastInvalid(
                    f"the served manifest hashes to {signed.manifest_hash}, the miner announced "
                    f"{announced_hash}"
                )
            check_manifest_against_run(signed.manifest, init_time=forecast.init_time,
                                       run_grid=grid)
        return signed.manifest_hash

    async def score_day1(
        self, forecast: ForecastRef, *, timeout_s: float | None = None
    ) -> Day1Outcome:
        """``timeout_s``: the task's deadline (None: none, for operator commands)."""
        if self._pool is None:
            async with in_process(timeout_s):
                return await score_day1_of(self._env, self._resources, forecast)
        return await in_pool(self._pool, day1_task, self._env, self._clock(), forecast,
                             timeout_s=timeout_s)

    async def score_era5_leads(
        self, forecast: ForecastRef, leads: Sequence[int], *, timeout_s: float | None = None
    ) -> list[ComponentRecord]:
        leads = tuple(leads)
        if self._pool is None:
            async with in_process(timeout_s):
                return await score_era5_of(self._resources, forecast, leads)
        return await in_pool(self._pool, era5_task, self._env, self._clock(), forecast, leads,
                             timeout_s=timeout_s)

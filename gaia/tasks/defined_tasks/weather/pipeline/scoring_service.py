"""The validator's :class:`ForecastService`: verified reads of miners' stores and scoring.

Day-1 and ERA5 scoring (one or more ERA5 leads per call) run in a
:class:`~gaia.tasks.defined_tasks.weather.pipeline.scoring_pool.ScoringPool`
(``validator.scoring_processes``; 0 runs them in this process), so the workers' event loop
keeps serving other jobs. The tasks themselves are in
:mod:`~gaia.tasks.defined_tasks.weather.pipeline.scoring_tasks`: per miner they read only
the miner's fields, and the references come from the host's reference cache, filled once
per host. Errors come back as the queue's outcomes: a forecast that fails verification is
``Invalid``, transport trouble is ``Retry``, a task past its deadline ``TimedOut``.

A scoring process that dies under a task (what the OOM killer does to a decompression
bomb) is replaced and the task run once more, in the same call, on the fresh process; a
forecast whose task kills its process twice is ``Invalid``. The count lives in the call
rather than in a job attempt or a per-forecast table: it needs no state shared between
attempts or worker processes, and a forecast cannot spend a job attempt to reset it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from gaia.clock import Now, system_clock
from gaia.jobs.outcomes import Invalid, Retry, TimedOut
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.data.era5 import Era5NotAvailable, Era5Source
from gaia.tasks.defined_tasks.weather.data.gfs import GfsTransportError
from gaia.tasks.defined_tasks.weather.data.grid import Grid, GridMismatch
from gaia.tasks.defined_tasks.weather.data.zarr_http import ZarrHttpError
from gaia.tasks.defined_tasks.weather.forecast_reader import (
    ForecastInvalid,
    ForecastTransportError,
    check_manifest_against_run,
    fetch_verified_manifest,
)
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import Day1Outcome, ForecastRef
from gaia.tasks.defined_tasks.weather.pipeline.scoring_pool import (
    DeadlinePassed,
    ProcessDied,
    ScoringPool,
)
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

T = TypeVar("T")
log = logging.getLogger(__name__)
__all__ = ["ScoringEnvironment", "ScoringService"]


class ScoringService:
    """``clock``: the validator's; tasks get its time at submission (the reference cache
    records use and prunes by it)."""

    def __init__(
        self, env: ScoringEnvironment, signed: SignedClient, *, processes: int,
        clock: Now = system_clock,
    ) -> None:
        self._env, self._signed, self._clock = env, signed, clock
        self._era5 = Era5Source(env.era5_url)
        self._pool = ScoringPool(processes) if processes > 0 else None
        self._resources = TaskResources(signed, env.reference_cache(clock))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    async def warm_day1_references(self, init_time: datetime) -> None:
        """Decode the run's GFS day-1 reference and read its climatology into this host's
        cache (the seed job does it once per run, so no miner's task waits for it)."""
        with _as_outcomes():
            await warm_references_of(self._env, self._resources.references, init_time, ())

    async def truth_available_until(self) -> datetime:
        """Read from the store's root attributes on every call: a store opened once would
        keep the ``valid_time_stop`` of that moment for the life of the process."""
        with _as_outcomes():
            return await asyncio.to_thread(self._era5.available_until)

    async def truth_grid(self) -> Grid:
        with _as_outcomes():
            return await asyncio.to_thread(lambda: self._era5.grid)

    async def commit_manifest(self, forecast: ForecastRef, announced_hash: str) -> str:
        with _as_outcomes():
            signed = await fetch_verified_manifest(
                self._signed, forecast.base_url, forecast.job_id, forecast.hotkey
            )
            if signed.manifest_hash != announced_hash:
                raise ForecastInvalid(
                    f"the served manifest hashes to {signed.manifest_hash}, the miner announced "
                    f"{announced_hash}"
                )
            check_manifest_against_run(
                signed.manifest, init_time=forecast.init_time, truth_grid=await self.truth_grid()
            )
        return signed.manifest_hash

    async def score_day1(
        self, forecast: ForecastRef, *, timeout_s: float | None = None
    ) -> Day1Outcome:
        """``timeout_s``: the task's deadline (None: none, for operator commands)."""
        if self._pool is None:
            async with _in_process(timeout_s):
                return await score_day1_of(self._env, self._resources, forecast)
        return await self._in_pool(day1_task, self._env, self._clock(), forecast,
                                   timeout_s=timeout_s)

    async def score_era5_leads(
        self, forecast: ForecastRef, leads: Sequence[int], *, timeout_s: float | None = None
    ) -> list[ComponentRecord]:
        leads = tuple(leads)
        if self._pool is None:
            async with _in_process(timeout_s):
                return await score_era5_of(self._resources, forecast, leads)
        return await self._in_pool(era5_task, self._env, self._clock(), forecast, leads,
                                   timeout_s=timeout_s)

    async def _in_pool(self, task: Callable[..., T], *args: Any, timeout_s: float | None) -> T:
        loop = asyncio.get_running_loop()
        ends_at = None if timeout_s is None else loop.time() + timeout_s
        try:
            return await self._run_once(task, args, ends_at, timeout_s)
        except ProcessDied as died:
            log.warning("%s; scoring once more on a fresh process", died)
        try:
            return await self._run_once(task, args, ends_at, timeout_s)
        except ProcessDied as died:
            raise Invalid(f"the forecast killed its scoring process twice: {died}") from died

    async def _run_once(
        self, task: Callable[..., T], args: tuple[Any, ...], ends_at: float | None,
        timeout_s: float | None,
    ) -> T:
        assert self._pool is not None
        left = None
        if timeout_s is not None and ends_at is not None:
            left = ends_at - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimedOut(timeout_s)
        try:
            with _as_outcomes():
                return await self._pool.run(task, *args, deadline_s=left)
        except DeadlinePassed as passed:
            raise TimedOut(passed.deadline_s if timeout_s is None else timeout_s) from passed


@contextlib.asynccontextmanager
async def _in_process(timeout_s: float | None) -> AsyncIterator[None]:
    """Scoring in the worker itself: the deadline as a plain asyncio timeout."""
    try:
        async with asyncio.timeout(timeout_s):
            with _as_outcomes():
                yield
    except TimeoutError as error:
        assert timeout_s is not None
        raise TimedOut(timeout_s) from error


@contextlib.contextmanager
def _as_outcomes() -> Iterator[None]:
    """Turn verification and transport errors into the queue's outcomes."""
    try:
        yield
    except ForecastInvalid as error:
        raise Invalid(error.reason) from error
    except (ForecastTransportError, GfsTransportError) as error:
        raise Retry(str(error)) from error
    except Era5NotAvailable as error:
        raise Retry(f"truth: {error}") from error
    except ZarrHttpError as error:
        raise Retry(f"reference store: {error}") from error
    except GridMismatch as error:
        raise Invalid(f"forecast grid: {error}") from error

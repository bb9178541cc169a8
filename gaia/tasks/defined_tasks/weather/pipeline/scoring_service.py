"""The validator's :class:`ForecastService`: verified reads of miners' stores and scoring.

Day-1 and ERA5 scoring (one or more ERA5 leads per call) run in a
:class:`~gaia.tasks.defined_tasks.weather.pipeline.scoring_pool.ScoringPool`
(``validator.scoring_processes``; 0 runs them in this process), so the workers' event loop
keeps serving other jobs. Each task is self-contained: it gets a picklable
:class:`ScoringEnvironment`, opens its own signed client and sources, reads the miner's
forecast one lead at a time through the verified store, and returns plain score records.
Errors come back as the queue's outcomes: a forecast that fails verification is
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
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import bittensor as bt
import xarray as xr

from gaia.config import Settings
from gaia.jobs.outcomes import Invalid, Retry, TimedOut
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.data.climatology import ClimatologySource
from gaia.tasks.defined_tasks.weather.data.era5 import Era5NotAvailable, Era5Source
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource, GfsTransportError
from gaia.tasks.defined_tasks.weather.data.grid import Grid, GridMismatch, align_truth_to_forecast
from gaia.tasks.defined_tasks.weather.data.zarr_http import ZarrHttpError
from gaia.tasks.defined_tasks.weather.forecast_reader import (
    ForecastInvalid,
    ForecastTransportError,
    check_manifest_against_run,
    fetch_verified_manifest,
    load_lead,
    open_verified_forecast,
)
from gaia.tasks.defined_tasks.weather.pipeline.context import DAY1_LEAD_HOURS
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import Day1Outcome, ForecastRef
from gaia.tasks.defined_tasks.weather.pipeline.scoring_pool import (
    DeadlinePassed,
    ProcessDied,
    ScoringPool,
)
from gaia.tasks.defined_tasks.weather.scoring.day1 import DAY1_FIELDS, Day1Config, score_day1
from gaia.tasks.defined_tasks.weather.scoring.era5 import Era5Config, Era5Result, score_era5
from gaia.tasks.defined_tasks.weather.scoring.fields import with_lead_hours
from gaia.tasks.defined_tasks.weather.scoring.records import ComponentRecord

T = TypeVar("T")
log = logging.getLogger(__name__)
DAY1_VARIABLES: tuple[str, ...] = tuple(sorted({name for name, _ in DAY1_FIELDS}))
DAY1_LEVELS: tuple[int, ...] = tuple(sorted({lev for _, lev in DAY1_FIELDS if lev is not None}))


@dataclass(frozen=True)
class ScoringEnvironment:
    """Everything a scoring task needs, in picklable form."""

    wallet_name: str
    wallet_hotkey: str
    wallet_path: str
    gfs_base_url: str
    gfs_fallback_url: str | None
    cache_dir: Path
    download_concurrency: int
    http_timeout_s: float
    era5_url: str
    climatology_url: str
    day1_leads: tuple[int, ...] = DAY1_LEAD_HOURS

    @classmethod
    def from_settings(cls, settings: Settings) -> ScoringEnvironment:
        data = settings.data
        return cls(
            wallet_name=settings.wallet.name, wallet_hotkey=settings.wallet.hotkey,
            wallet_path=str(settings.wallet.path.expanduser()),
            gfs_base_url=data.gfs_base_url, gfs_fallback_url=data.gfs_fallback_url or None,
            cache_dir=data.cache_dir.expanduser(), download_concurrency=data.download_concurrency,
            http_timeout_s=data.http_timeout_s, era5_url=data.era5_url,
            climatology_url=data.climatology_url,
        )

    def signed_client(self) -> SignedClient:
        wallet = bt.Wallet(name=self.wallet_name, hotkey=self.wallet_hotkey, path=self.wallet_path)
        return SignedClient(wallet, timeout=self.http_timeout_s)

    def gfs(self) -> GfsSource:
        return GfsSource(self.gfs_base_url, self.cache_dir,
                         fallback_base_url=self.gfs_fallback_url,
                         max_concurrency=self.download_concurrency, timeout_s=self.http_timeout_s)


class ScoringService:
    def __init__(self, env: ScoringEnvironment, signed: SignedClient, *, processes: int) -> None:
        self._env = env
        self._signed = signed
        self._era5 = Era5Source(env.era5_url)
        self._pool = ScoringPool(processes) if processes > 0 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    async def truth_available_until(self) -> datetime:
        """Read from the store's root attributes on every call: a store opened once would
        keep the ``valid_time_stop`` of that moment for the life of the process."""
        with _as_outcomes():
            return await asyncio.to_thread(self._era5.available_until)

    async def truth_grid(self) -> Grid:
        return await asyncio.to_thread(lambda: Grid.from_dataset(self._era5.dataset))

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
                return await _day1(self._env, forecast)
        return await self._in_pool(day1_task, self._env, forecast, timeout_s=timeout_s)

    async def score_era5_leads(
        self, forecast: ForecastRef, leads: Sequence[int], *, timeout_s: float | None = None
    ) -> list[ComponentRecord]:
        leads = tuple(leads)
        if self._pool is None:
            async with _in_process(timeout_s):
                return await _era5(self._env, forecast, leads)
        return await self._in_pool(era5_task, self._env, forecast, leads, timeout_s=timeout_s)

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


async def _open_committed(client: SignedClient, forecast: ForecastRef) -> xr.Dataset:
    assert forecast.manifest_hash is not None, "scoring needs a committed manifest"
    signed = await fetch_verified_manifest(
        client, forecast.base_url, forecast.job_id, forecast.hotkey, forecast.manifest_hash
    )
    return await open_verified_forecast(
        client, forecast.base_url, forecast.job_id, signed.manifest, forecast.manifest_hash
    )


def _valid_times(init_time: datetime, leads: Sequence[int]) -> list[datetime]:
    return [init_time + timedelta(hours=lead) for lead in leads]


async def _day1(env: ScoringEnvironment, forecast: ForecastRef) -> Day1Outcome:
    async with env.signed_client() as client, env.gfs() as gfs:
        dataset = await _open_committed(client, forecast)
        names = sorted(set(DAY1_VARIABLES) & set(dataset.data_vars))
        leads = [lead for lead in env.day1_leads if lead in dataset["lead_hours"].values]
        selected = dataset[names].sel(lead_hours=leads)
        if "level" in selected.dims:
            selected = selected.sel(level=list(DAY1_LEVELS))
        miner = await asyncio.to_thread(selected.load)
        reference = (await gfs.fetch_forecast(
            forecast.init_time, env.day1_leads, variables=DAY1_VARIABLES, levels=DAY1_LEVELS,
        )).swap_dims(
            time="lead_hours"
        ).drop_vars("time")
    grid = Grid.from_dataset(miner)
    reference = align_truth_to_forecast(reference, grid)
    climatology = align_truth_to_forecast(
        await asyncio.to_thread(_climatology, env, forecast.init_time, env.day1_leads), grid
    )
    result = await asyncio.to_thread(
        score_day1, miner, reference, climatology, Day1Config(lead_hours=env.day1_leads)
    )
    return Day1Outcome(result.records(), result.passed, result.clone, result.reasons)


def _climatology(env: ScoringEnvironment, init_time: datetime, leads: Sequence[int]) -> xr.Dataset:
    source = ClimatologySource(env.climatology_url)
    return with_lead_hours(source.for_times(_valid_times(init_time, leads)).load(), init_time)


async def _era5(
    env: ScoringEnvironment, forecast: ForecastRef, leads: tuple[int, ...]
) -> list[ComponentRecord]:
    era5, climatology = Era5Source(env.era5_url), ClimatologySource(env.climatology_url)
    fields, notes = [], []
    async with env.signed_client() as client:
        dataset = await _open_committed(client, forecast)
        offered = set(dataset["lead_hours"].values.tolist())
        grid = Grid.from_dataset(dataset)
        for lead in leads:
            valid = _valid_times(forecast.init_time, [lead])
            truth = align_truth_to_forecast(
                await asyncio.to_thread(lambda v=valid: era5.truth(v).load()), grid)
            clim = align_truth_to_forecast(
                await asyncio.to_thread(lambda v=valid: climatology.for_times(v).load()), grid)
            miner = await load_lead(dataset, lead) if lead in offered else None
            result = await asyncio.to_thread(
                score_era5, lambda _lead, m=miner: m, lambda _lead, t=truth: t,
                lambda _lead, c=clim: c, Era5Config(lead_hours=(lead,)),
            )
            fields += result.fields
            notes += result.notes
    return Era5Result(tuple(fields), tuple(notes)).records()


def day1_task(env: ScoringEnvironment, forecast: ForecastRef) -> Day1Outcome:
    """Process-pool entry: day-1 scoring in a fresh event loop."""
    return asyncio.run(_day1(env, forecast))


def era5_task(
    env: ScoringEnvironment, forecast: ForecastRef, leads: tuple[int, ...]
) -> list[ComponentRecord]:
    """Process-pool entry: ERA5 scoring of ``leads`` in a fresh event loop."""
    return asyncio.run(_era5(env, forecast, leads))

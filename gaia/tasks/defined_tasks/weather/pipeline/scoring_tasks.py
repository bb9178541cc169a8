"""The scoring tasks: what runs in a scoring process (or in the worker when there is none).

A task gets a picklable :class:`ScoringEnvironment` and does per miner only what is per
miner: it reads the miner's committed forecast through the lean verified reader (day-1:
exactly the six day-1 fields; ERA5: one lead's 69 fields at a time) and scores it against
references from the host's :class:`ReferenceCache`. The references themselves (GFS day-1
forecast, ERA5 truth, climatology) are fetched and decoded once per host: the first task that
needs a source chunk fills the cache under a file lock, every other task (in any process)
reads the cached fields, memory-mapped.

Each scoring process keeps one event loop, one wallet and signed client and one cache handle
for its whole life (:func:`process_resources`), so a task pays neither a wallet load nor a
new connection pool. Tasks take ``now``, the validator's clock at submission, because a
process cannot share the validator's (possibly virtual) clock: the cache records use and
prunes by it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from gaia.chain.wallet import open_wallet
from gaia.clock import Now
from gaia.config import DataSettings, Settings, WalletSettings
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.data.climatology import ClimatologySource
from gaia.tasks.defined_tasks.weather.data.era5 import Era5Source
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource
from gaia.tasks.defined_tasks.weather.data.lead_fields import LeadFields
from gaia.tasks.defined_tasks.weather.forecast_reader import (
    VerifiedForecast,
    fetch_verified_manifest,
    load_lead,
    open_verified_forecast,
)
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import Day1Outcome, ForecastRef
from gaia.tasks.defined_tasks.weather.pipeline.reference_cache import ReferenceCache
from gaia.tasks.defined_tasks.weather.scoring.day1 import DAY1_FIELDS, Day1Config, score_day1
from gaia.tasks.defined_tasks.weather.scoring.era5 import ERA5_FIELDS, score_era5_lead
from gaia.tasks.defined_tasks.weather.scoring.records import ComponentRecord
from gaia.tasks.defined_tasks.weather.variables import DAY1_LEAD_HOURS

T = TypeVar("T")
GB = 10**9


@dataclass(frozen=True)
class ScoringEnvironment:
    """Everything a scoring task needs, in picklable form."""

    wallet: WalletSettings
    data: DataSettings  # the GFS source, the ERA5 and climatology URLs, the HTTP timeout
    reference_dir: Path
    reference_max_bytes: int
    reference_idle_s: float
    day1_leads: tuple[int, ...] = DAY1_LEAD_HOURS

    @classmethod
    def from_settings(cls, settings: Settings) -> ScoringEnvironment:
        data = settings.data
        cache_dir = data.cache_dir.expanduser()
        return cls(
            wallet=settings.wallet, data=data,
            reference_dir=(data.reference_cache_dir or cache_dir / "references").expanduser(),
            reference_max_bytes=int(data.reference_cache_max_gb * GB),
            reference_idle_s=data.reference_idle_hours * 3600.0,
        )

    def signed_client(self) -> SignedClient:
        return SignedClient(open_wallet(self.wallet), timeout=self.data.http_timeout_s)

    def gfs(self) -> GfsSource:
        return GfsSource.from_settings(self.data)

    def reference_cache(self, clock: Now) -> ReferenceCache:
        return ReferenceCache(
            self.reference_dir, era5=Era5Source(self.data.era5_url),
            climatology=ClimatologySource(self.data.climatology_url),
            max_bytes=self.reference_max_bytes, idle_s=self.reference_idle_s, clock=clock,
        )


@dataclass
class TaskResources:
    """What a task uses besides its arguments: the signed client and the reference cache."""

    client: SignedClient
    references: ReferenceCache


@dataclass
class _ProcessState:
    loop: asyncio.AbstractEventLoop
    resources: TaskResources
    now: datetime | None = None


_PROCESS: dict[ScoringEnvironment, _ProcessState] = {}


def _process_state(env: ScoringEnvironment) -> _ProcessState:
    """This process's loop, client and cache for ``env``, made on first use."""
    state = _PROCESS.get(env)
    if state is None:
        state = _ProcessState(asyncio.new_event_loop(), TaskResources(
            env.signed_client(), env.reference_cache(lambda: _submitted_at(env)),
        ))
        _PROCESS[env] = state
    return state


def _submitted_at(env: ScoringEnvironment) -> datetime:
    now = _PROCESS[env].now
    assert now is not None, "a task sets the time it was submitted before it runs"
    return now


def _run_in_process(
    env: ScoringEnvironment, now: datetime,
    body: Callable[[TaskResources], Coroutine[Any, Any, T]],
) -> T:
    state = _process_state(env)
    state.now = now
    return state.loop.run_until_complete(body(state.resources))


def _valid_time(init_time: datetime, lead: int) -> datetime:
    return init_time + timedelta(hours=lead)


async def open_committed(client: SignedClient, forecast: ForecastRef) -> VerifiedForecast:
    assert forecast.manifest_hash is not None, "scoring needs a committed manifest"
    signed = await fetch_verified_manifest(
        client, forecast.base_url, forecast.job_id, forecast.hotkey, forecast.manifest_hash
    )
    return await open_verified_forecast(
        client, forecast.base_url, forecast.job_id, signed.manifest, forecast.manifest_hash
    )


async def day1_references(
    env: ScoringEnvironment, references: ReferenceCache, init_time: datetime,
) -> tuple[dict[int, LeadFields], dict[int, LeadFields]]:
    """The GFS reference and the climatology of the day-1 leads (from the cache)."""
    async with env.gfs() as gfs:
        reference = await references.gfs_forecast(gfs, init_time, env.day1_leads, DAY1_FIELDS)
    climatology = {
        lead: await asyncio.to_thread(
            references.climatology, _valid_time(init_time, lead), DAY1_FIELDS)
        for lead in env.day1_leads
    }
    return reference, climatology


async def era5_references(
    references: ReferenceCache, init_time: datetime, lead: int,
) -> tuple[LeadFields, LeadFields]:
    """Truth and climatology of one ERA5 lead (from the cache)."""
    valid = _valid_time(init_time, lead)
    truth = await asyncio.to_thread(references.truth, valid, ERA5_FIELDS)
    climatology = await asyncio.to_thread(references.climatology, valid, ERA5_FIELDS)
    return truth, climatology


async def score_day1_of(
    env: ScoringEnvironment, resources: TaskResources, forecast: ForecastRef,
) -> Day1Outcome:
    store = await open_committed(resources.client, forecast)
    miner = {
        lead: await load_lead(store, lead, DAY1_FIELDS)
        for lead in env.day1_leads if lead in store.lead_hours
    }
    reference, climatology = await day1_references(env, resources.references, forecast.init_time)
    grid = store.grid
    result = await asyncio.to_thread(
        score_day1, miner,
        {lead: fields.on_grid(grid) for lead, fields in reference.items()},
        {lead: fields.on_grid(grid) for lead, fields in climatology.items()},
        Day1Config(lead_hours=env.day1_leads),
    )
    return Day1Outcome(result.records(), result.verdict, result.reasons)


async def score_era5_of(
    resources: TaskResources, forecast: ForecastRef, leads: Sequence[int],
) -> list[ComponentRecord]:
    store = await open_committed(resources.client, forecast)
    records: list[ComponentRecord] = []
    for lead in leads:
        truth, climatology = await era5_references(resources.references, forecast.init_time, lead)
        truth, climatology = truth.on_grid(store.grid), climatology.on_grid(store.grid)
        miner = await load_lead(store, lead) if lead in store.lead_hours else None
        scored = await asyncio.to_thread(score_era5_lead, miner, truth, climatology, lead)
        records += scored.records()
    return records


async def warm_references_of(
    env: ScoringEnvironment, references: ReferenceCache, init_time: datetime,
    era5_leads: Sequence[int],
) -> None:
    """Fill the cache with a run's day-1 references and the given ERA5 leads' references:
    what the seed job and the first scoring task of each lead would otherwise do."""
    await day1_references(env, references, init_time)
    for lead in era5_leads:
        await era5_references(references, init_time, lead)


def day1_task(env: ScoringEnvironment, now: datetime, forecast: ForecastRef) -> Day1Outcome:
    """Process-pool entry: day-1 scoring of one miner."""
    return _run_in_process(env, now, lambda res: score_day1_of(env, res, forecast))


def era5_task(
    env: ScoringEnvironment, now: datetime, forecast: ForecastRef, leads: tuple[int, ...],
) -> list[ComponentRecord]:
    """Process-pool entry: ERA5 scoring of ``leads`` of one miner."""
    return _run_in_process(env, now, lambda res: score_era5_of(res, forecast, leads))


def warm_references_task(
    env: ScoringEnvironment, now: datetime, init_time: datetime, era5_leads: tuple[int, ...],
) -> None:
    """Process-pool entry: :func:`warm_references_of`."""
    _run_in_process(
        env, now, lambda res: warm_references_of(env, res.references, init_time, era5_leads)
    )

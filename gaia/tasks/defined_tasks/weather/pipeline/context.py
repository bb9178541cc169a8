"""The collaborators every pipeline step receives, bound at registration (no globals)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import xarray as xr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.chain.client import ChainClient
from gaia.clock import Now
from gaia.config import ValidatorSettings
from gaia.jobs.queue import JobQueue
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import ForecastService
from gaia.tasks.defined_tasks.weather.pipeline.miner_client import MinerClient
from gaia.tasks.defined_tasks.weather.pipeline.timing import RunTiming
from gaia.tasks.defined_tasks.weather.variables import DAY1_LEAD_HOURS, ERA5_LEAD_HOURS
from gaia.validator.eligibility import Eligibility


class GfsReader(Protocol):
    async def is_cycle_complete(self, cycle: datetime) -> bool: ...

    async def fetch_forecast(
        self, init_time: datetime, lead_hours: Sequence[int], *,
        variables: Sequence[str] | None = None, levels: Sequence[int] | None = None,
    ) -> xr.Dataset: ...


@dataclass(frozen=True)
class PipelineContext:
    session_factory: async_sessionmaker[AsyncSession]
    queue: JobQueue
    settings: ValidatorSettings
    timing: RunTiming
    clock: Now
    gfs: GfsReader
    chain: ChainClient
    miners: MinerClient
    forecasts: ForecastService
    own_hotkey: str
    day1_leads: tuple[int, ...] = DAY1_LEAD_HOURS
    era5_leads: tuple[int, ...] = ERA5_LEAD_HOURS

    @property
    def eligibility(self) -> Eligibility:
        """Whom the fan-out queries (:mod:`gaia.validator.eligibility`)."""
        return Eligibility(self.own_hotkey, self.settings.allow_private_axons)

"""One forecast job, start to finish: GFS inputs -> model -> forecast store -> signed manifest.

A model that asks for GFS's static fields (``needs_gfs_statics``) gets them from the same
f000 file as its T0 input, in the same fetch slot.

Jobs queue twice: for a fetch slot (``fetch_concurrency``: a GFS fetch holds its downloads'
connections and a cycle's inputs in memory) and for an inference slot
(``inference_concurrency``). Every blocking step (the model's next lead, writing a lead, finalizing the store) runs in
the inference thread pool, never on the event loop; progress is recorded after each lead.
A rerun (after a restart or a failure) starts from an empty store.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import xarray as xr

from gaia.clock import Now
from gaia.miner.database import JobRecord, MinerDatabase
from gaia.miner.metrics import MinerMetrics
from gaia.tasks.defined_tasks.weather.forecast_store import ForecastStoreWriter
from gaia.tasks.defined_tasks.weather.inference.base import (
    ForecastInputs,
    ForecastModel,
    wants_gfs_statics,
)
from gaia.tasks.defined_tasks.weather.variables import FORECAST_LEAD_HOURS

log = logging.getLogger(__name__)


class InputSource(Protocol):
    async def fetch_inputs(self, init_time: datetime) -> xr.Dataset: ...

    async def fetch_statics(self, cycle: datetime) -> xr.Dataset: ...


class JobLost(RuntimeError):
    """The job's row left the state this run expected (deleted, or moved on elsewhere)."""


@dataclass(frozen=True)
class ForecastJobContext:
    """What a job run needs; built once by the app and shared by every job."""

    db: MinerDatabase
    open_source: Callable[[], AbstractAsyncContextManager[InputSource]]
    model: ForecastModel
    store_root: Path
    signer: Any  # the miner hotkey's keypair (bittensor_wallet.Keypair)
    executor: Executor
    fetch_slots: asyncio.Semaphore
    inference_slots: asyncio.Semaphore
    clock: Now
    metrics: MinerMetrics = field(default_factory=MinerMetrics)  # each lead's time


def store_dir(store_root: Path, job_id: str) -> Path:
    return store_root / job_id


async def run_job(job: JobRecord, ctx: ForecastJobContext) -> str:
    """Run ``job`` to forecast_ready; returns its manifest hash. Failures raise."""
    started = time.monotonic()
    if not await ctx.db.begin_attempt(job.job_id, ctx.clock()):
        raise JobLost(f"job {job.job_id} is no longer unfinished")
    async with ctx.fetch_slots:
        log.info("job %s: fetching GFS inputs for %s", job.job_id, job.gfs_init_time.isoformat())
        async with ctx.open_source() as source:
            dataset = await source.fetch_inputs(job.gfs_init_time)
            statics = (await source.fetch_statics(job.gfs_init_time)
                       if wants_gfs_statics(ctx.model) else None)
        inputs = await _in_pool(ctx, ForecastInputs.from_dataset, dataset, statics)
    log.info("job %s: inputs ready in %.1fs", job.job_id, time.monotonic() - started)
    async with ctx.inference_slots:
        if not await ctx.db.mark_inference_running(
            job.job_id, len(FORECAST_LEAD_HOURS), ctx.clock()
        ):
            raise JobLost(f"job {job.job_id} left fetching_inputs during the fetch")
        manifest_hash = await _infer_and_store(job, inputs, ctx)
        # still holding the slot: at most inference_concurrency jobs show inference_running
        if not await ctx.db.mark_ready(job.job_id, manifest_hash, ctx.clock()):
            raise JobLost(f"job {job.job_id} left inference_running before it finished")
    log.info(
        "job %s: forecast_ready in %.1fs, manifest %s",
        job.job_id,
        time.monotonic() - started,
        manifest_hash,
    )
    return manifest_hash


async def _infer_and_store(
    job: JobRecord, inputs: ForecastInputs, ctx: ForecastJobContext
) -> str:
    started = time.monotonic()
    root = store_dir(ctx.store_root, job.job_id)
    await _in_pool(ctx, shutil.rmtree, root, True)
    writer = await _in_pool(
        ctx,
        partial(
            ForecastStoreWriter,
            root,
            grid=inputs.grid,
            init_time=job.gfs_init_time,
            variables=inputs.variables,
            levels=inputs.levels,
            lead_hours=FORECAST_LEAD_HOURS,
        ),
    )
    steps = await _in_pool(ctx, _start_forecast, ctx.model, inputs)
    written: set[int] = set()
    lead_started = time.monotonic()
    while (step := await _in_pool(ctx, _next_step, steps)) is not None:
        lead, state = step
        await _in_pool(ctx, writer.write_lead, lead, state)
        ctx.metrics.lead_computed(lead, time.monotonic() - lead_started)
        written.add(lead)
        await ctx.db.record_progress(job.job_id, len(written), ctx.clock())
        log.debug("job %s: lead %dh written (%d done)", job.job_id, lead, len(written))
        lead_started = time.monotonic()
    log.info(
        "job %s: %d leads computed and written in %.1fs",
        job.job_id,
        len(written),
        time.monotonic() - started,
    )
    signed = await _in_pool(ctx, writer.finalize, job.job_id, ctx.signer)
    return str(signed.manifest_hash)


def _start_forecast(
    model: ForecastModel, inputs: ForecastInputs
) -> Iterator[tuple[int, xr.Dataset]]:
    return iter(model.forecast(inputs, FORECAST_LEAD_HOURS))


def _next_step(steps: Iterator[tuple[int, xr.Dataset]]) -> tuple[int, xr.Dataset] | None:
    return next(steps, None)


async def _in_pool(ctx: ForecastJobContext, fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(ctx.executor, fn, *args)

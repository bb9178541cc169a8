"""Builds the validator's collaborators from settings and runs its parts until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import bittensor as bt
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from gaia.chain.client import ChainClient
from gaia.chain.factory import build_chain_client
from gaia.chain.wallet import WalletUnreadable, open_wallet
from gaia.clock import Clock, system_clock
from gaia.config import Settings, ValidatorSettings
from gaia.database.connection import check_connection
from gaia.database.migrations import require_head
from gaia.jobs.queue import JobQueue, asyncpg_dsn
from gaia.jobs.worker import Worker, WorkerOptions
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource
from gaia.tasks.defined_tasks.weather.pipeline.context import PipelineContext
from gaia.tasks.defined_tasks.weather.pipeline.miner_client import MinerClient
from gaia.tasks.defined_tasks.weather.pipeline.retention_schedule import schedule_retention_warnings
from gaia.tasks.defined_tasks.weather.pipeline.scheduler import PeriodicJob, Scheduler
from gaia.tasks.defined_tasks.weather.pipeline.scoring_pool import machine_processes
from gaia.tasks.defined_tasks.weather.pipeline.scoring_service import (
    ScoringEnvironment,
    ScoringService,
)
from gaia.tasks.defined_tasks.weather.pipeline.timing import RunTiming
from gaia.tasks.defined_tasks.weather.pipeline.workers import (
    SCORING_JOBS,
    all_policies,
    build_registry,
)
from gaia.validator import periodic, run_retention
from gaia.validator.health import log_health
from gaia.validator.metrics import ValidatorMetrics
from gaia.validator.probe import ValidatorProbe, metrics_listener

log = logging.getLogger(__name__)


class WalletError(RuntimeError):
    pass


def load_wallet(settings: Settings) -> tuple[bt.Wallet, str]:
    try:
        wallet = open_wallet(settings.wallet)
    except WalletUnreadable as error:
        raise WalletError(str(error)) from error
    return wallet, wallet.hotkey.ss58_address


def resolve_scoring_processes(validator: ValidatorSettings) -> int:
    """``scoring_processes`` as configured, or what this machine can give when unset."""
    configured = validator.scoring_processes
    processes = machine_processes() if configured is None else configured
    how = "configured" if configured is not None else "what this machine can give"
    log.info("scoring processes: %d (%s)%s", processes, how,
             "; scoring runs in the worker itself" if processes == 0 else "")
    return processes


def worker_options(validator: ValidatorSettings) -> WorkerOptions:
    """The job worker's options from the validator's settings."""
    return WorkerOptions(
        concurrency=validator.workers,
        lease_s=validator.lease_s,
        backoff_scale=validator.backoff_scale,
        shutdown_grace_s=validator.shutdown_grace_s,
        retention_days=validator.job_retention_days,
    )


@dataclass
class ValidatorParts:
    engine: AsyncEngine
    worker: Worker
    scheduler: Scheduler | None
    probe: ValidatorProbe  # /metrics and /healthz of this process


@contextlib.asynccontextmanager
async def validator_parts(
    settings: Settings, *, with_scheduler: bool, clock: Clock = system_clock,
) -> AsyncIterator[ValidatorParts]:
    """Everything the validator runs, on one clock (a simulation passes a virtual one)."""
    engine = create_async_engine(settings.database_url, pool_size=10, max_overflow=20)
    try:
        await check_connection(engine, settings.database_url)
        await require_head(engine)
        wallet, hotkey = load_wallet(settings)
        session_factory = async_sessionmaker(engine, expire_on_commit=False)
        chain = build_chain_client(settings.chain, hotkey=hotkey, wallet=wallet)
        gfs = GfsSource.from_settings(settings.data, clock=clock)
        signed = SignedClient(wallet, timeout=settings.data.http_timeout_s)
        processes = resolve_scoring_processes(settings.validator)
        scoring = ScoringService(ScoringEnvironment.from_settings(settings), signed,
                                 processes=processes, clock=clock)
        try:
            yield _assemble(settings, engine, session_factory, chain, gfs, signed, scoring,
                            processes, hotkey, with_scheduler, clock)
        finally:
            scoring.close()
            await signed.aclose()
            await gfs.aclose()
    finally:
        await engine.dispose()


def _assemble(
    settings: Settings, engine: AsyncEngine, session_factory: async_sessionmaker,
    chain: ChainClient, gfs: GfsSource, signed: SignedClient, scoring: ScoringService,
    scoring_processes: int, hotkey: str, with_scheduler: bool, clock: Clock,
) -> ValidatorParts:
    v = settings.validator
    queue = JobQueue(all_policies(), clock)
    timing = RunTiming(schedule_hour_utc=v.schedule_hour_utc)
    context = PipelineContext(
        session_factory=session_factory, queue=queue, settings=v, timing=timing,
        clock=clock, gfs=gfs, chain=chain, miners=MinerClient(signed),
        forecasts=scoring, own_hotkey=hotkey,
    )
    periodic_ctx = periodic.PeriodicContext(session_factory, chain, v.weights_window_runs,
                                            v.fallback_weight_uid)
    retention = run_retention.RetentionContext.of(settings, session_factory, clock)
    registry = build_registry(context, periodic_ctx, scoring_processes=scoring_processes,
                              retention=retention)
    metrics = ValidatorMetrics(clock, scoring_job_types=SCORING_JOBS)
    worker = Worker(asyncpg_dsn(settings.database_url), registry, session_factory,
                    worker_options(v), clock=clock, observer=metrics)
    probe = ValidatorProbe(metrics, session_factory, clock,
                           unclaimed_after_s=settings.metrics.unclaimed_after_s)
    for line in schedule_retention_warnings(timing, context.era5_leads):
        log.warning("retention: %s", line)
    scheduler = None
    if with_scheduler:
        scheduler = Scheduler(session_factory, queue, timing, clock, [
            PeriodicJob(periodic.METAGRAPH_SYNC,
                        timedelta(seconds=settings.chain.metagraph_refresh_s)),
            PeriodicJob(periodic.SET_WEIGHTS, timedelta(seconds=v.weights_interval_s)),
            PeriodicJob(run_retention.RETENTION, run_retention.PURGE_EVERY),
        ], paused_by_setting=v.paused)
    return ValidatorParts(engine, worker, scheduler, probe)


async def run_validator(settings: Settings, *, with_scheduler: bool) -> None:
    """Run until SIGTERM/SIGINT: workers, the metrics listener when ``--metrics.port`` is
    set, and (unless worker-only) scheduler and health log."""
    async with (validator_parts(settings, with_scheduler=with_scheduler) as parts,
                metrics_listener(settings.metrics, parts.probe)):
        stop = asyncio.Event()

        def request_stop() -> None:
            stop.set()
            parts.worker.stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, request_stop)
        session_factory = async_sessionmaker(parts.engine, expire_on_commit=False)
        async with asyncio.TaskGroup() as group:
            group.create_task(parts.worker.run())
            if parts.scheduler is not None:
                group.create_task(parts.scheduler.run(stop))
                group.create_task(log_health(session_factory, stop,
                                             paused_by_setting=settings.validator.paused))
        log.info("validator stopped")

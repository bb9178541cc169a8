"""The miner's long-lived parts, built from settings for the app's lifespan.

Built: the wallet and the model are loaded, the data directory created and the database URL
parsed, each refused with one clear line (``gaia.miner.startup``). Start: open the database
(creating its tables), read the metagraph, resume unfinished jobs, start the periodic tasks (metagraph refresh, retention
purge), publish the axon when asked. Stop: cancel jobs (they resume at the next start) and
the periodic tasks, close the database.

Retention (``gaia.tasks.defined_tasks.weather.retention``) is counted from each forecast's
GFS init time: the chunks of the day-1-only leads go after the day-1 window, the whole
forecast (files, then row) after the protocol's promise, neither sooner than a day after the
forecast was finished (hindcasts). The periodic tasks sleep on the injected clock, so a
simulation that moves a virtual clock moves them too.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import bittensor as bt

from gaia.chain.client import AxonServed, ChainClient, ChainError, ChainRefused
from gaia.chain.factory import build_chain_client
from gaia.clock import Now, sleep_for, system_clock
from gaia.config import Settings
from gaia.miner.auth import AddressLimiter, Authenticator, RateLimiter
from gaia.miner.database import FINISHED, MinerDatabase, database_url_for
from gaia.miner.deps import MinerServices
from gaia.miner.forecasts import ForecastFiles
from gaia.miner.jobs import JobService, RetryPolicy
from gaia.miner.metrics import MinerMetrics
from gaia.miner.observability import model_identity
from gaia.miner.pipeline import ForecastJobContext, run_job, store_dir
from gaia.miner.runner import JobRunner
from gaia.miner.startup import build_model, load_wallet, make_directory, open_database
from gaia.miner.validators import ValidatorRegistry
from gaia.tasks.defined_tasks.weather.data import gfs_cache
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource
from gaia.tasks.defined_tasks.weather.forecast_store import PARTIAL_SUFFIX
from gaia.tasks.defined_tasks.weather.protocol import MinerJobStatus
from gaia.tasks.defined_tasks.weather.retention import RetentionRule, delete_early_leads

log = logging.getLogger(__name__)



def _remove_store(store_root: Path, job_id: str) -> None:
    """Delete a job's store and any partial one a failed run left beside it."""
    root = store_dir(store_root, job_id)
    for path in (root, root.with_name(root.name + PARTIAL_SUFFIX)):
        if path.exists():
            shutil.rmtree(path)


async def purge_expired(
    db: MinerDatabase, store_root: Path, rule: RetentionRule, now: datetime
) -> int:
    """Delete the finished jobs (files, then rows) whose forecast's retention ended by ``now``."""
    expired = await db.finished_within(FINISHED, rule.expired(now))
    for job in expired:
        await asyncio.to_thread(_remove_store, store_root, job.job_id)
        await db.delete_job(job.job_id)
        log.info("deleted expired forecast %s (init %s)", job.job_id, job.gfs_init_time)
    return len(expired)


async def purge_early_leads(
    db: MinerDatabase, store_root: Path, rule: RetentionRule, now: datetime
) -> int:
    """Delete the day-1-only leads' chunks of the ready forecasts past the day-1 window at
    ``now``; returns how many files went (0 once every such forecast is done)."""
    due = await db.finished_within(
        [MinerJobStatus.FORECAST_READY], rule.early_leads_expired(now)
    )
    deleted = 0
    for job in due:
        count = await asyncio.to_thread(delete_early_leads, store_dir(store_root, job.job_id))
        if count:
            log.info("deleted %d early-lead chunks of %s (init %s)",
                     count, job.job_id, job.gfs_init_time)
        deleted += count
    return deleted


async def every(
    clock: Now, interval_s: float, action: Callable[[], Awaitable[Any]], what: str
) -> None:
    """Run ``action`` every ``interval_s`` of ``clock``; a failure is logged and retried next time."""
    while True:
        await sleep_for(clock, interval_s)
        try:
            await action()
        except Exception:  # noqa: BLE001 - periodic task top level: log, keep the last state
            log.exception("%s failed; retrying in %.0fs", what, interval_s)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def publish_axon(chain: ChainClient, ip: str, port: int, retry_s: float) -> bool:
    """Publish ``ip:port`` unless the chain has it already; True when the chain has it now.

    A refusal (the chain's serving rate limit, an unregistered hotkey) or an unreachable
    chain is logged with the reason; the miner keeps serving and the caller tries again.
    """
    try:
        outcome = await chain.serve(ip, port)
    except ChainRefused as refusal:
        log.warning("axon %s:%d not published: %s; trying again in %.0fs",
                    ip, port, refusal, retry_s)
        return False
    except ChainError as error:
        log.error("axon %s:%d not published: %s; trying again in %.0fs", ip, port, error, retry_s)
        return False
    if outcome is AxonServed.UNCHANGED:
        log.info("axon %s:%d already on the chain; nothing published", ip, port)
    else:
        log.info("axon %s:%d published on the chain", ip, port)
    return True


def _identity_words(model: object) -> str:
    """``, variant Aurora, checkpoint_sha256 …`` for a model that says what it is."""
    return "".join(f", {key} {value}" for key, value in (model_identity(model) or {}).items())


class MinerRuntime:
    """Owns the database, the job runner and the periodic tasks of one miner process."""

    def __init__(self, settings: Settings, *, clock: Now = system_clock) -> None:
        self.settings = settings
        self.clock = clock
        miner = settings.miner
        self.retention = miner.retention_rule()
        self.data_dir = miner.data_dir.expanduser()
        self.store_root = make_directory(self.data_dir / "forecasts", "--data-dir")
        self.db = open_database(database_url_for(miner.database_url, self.data_dir))
        self.wallet = load_wallet(settings)
        self.metrics = MinerMetrics()  # this runtime's own registry (/metrics)
        self.model = build_model(miner)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[MinerServices]:
        """Start everything, yield the services for the routes, stop everything."""
        self.store_root.mkdir(parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:
            await self.db.create_tables()
            stack.push_async_callback(self.db.close)
            wallet = self.wallet
            hotkey = wallet.hotkey.ss58_address
            chain = build_chain_client(self.settings.chain, hotkey=hotkey, wallet=wallet)
            registry = await self._registry(chain)
            executor = ThreadPoolExecutor(
                max_workers=self.settings.miner.inference_concurrency + 1,
                thread_name_prefix="inference",
            )
            stack.callback(executor.shutdown, wait=False, cancel_futures=True)
            runner = self._runner(wallet, executor)
            stack.push_async_callback(runner.close)
            await self._start_periodic(stack, registry, chain)
            await runner.resume_unfinished()
            log.info("miner %s ready (model %s%s)", hotkey, self.settings.miner.model,
                     _identity_words(self.model))
            yield self._services(hotkey, registry, runner)

    async def _registry(self, chain: ChainClient) -> ValidatorRegistry:
        miner = self.settings.miner
        registry = ValidatorRegistry(
            chain, min_stake=miner.min_validator_stake, allowlist=miner.validator_allowlist
        )
        try:
            await registry.refresh()
        except ChainError as exc:  # serve the allowlist meanwhile; the refresh loop retries
            log.error("cannot read the metagraph at start: %s", exc)
        return registry

    def _runner(self, wallet: bt.Wallet, executor: ThreadPoolExecutor) -> JobRunner:
        data = self.settings.data
        open_source = partial(GfsSource.from_settings, data, clock=self.clock)
        ctx = ForecastJobContext(
            db=self.db,
            open_source=open_source,
            model=self.model,
            store_root=self.store_root,
            signer=wallet.hotkey,
            executor=executor,
            fetch_slots=asyncio.Semaphore(self.settings.miner.fetch_concurrency),
            inference_slots=asyncio.Semaphore(self.settings.miner.inference_concurrency),
            clock=self.clock,
            metrics=self.metrics,
        )
        return JobRunner(partial(run_job, ctx=ctx), self.db, self.clock, self.metrics)

    async def _start_periodic(
        self, stack: AsyncExitStack, registry: ValidatorRegistry, chain: ChainClient
    ) -> None:
        await self._maintain()
        tasks = [*await self._axon_task(chain),
            asyncio.create_task(
                every(
                    self.clock,
                    self.settings.chain.metagraph_refresh_s,
                    registry.refresh,
                    "metagraph refresh",
                )
            ),
            asyncio.create_task(
                every(self.clock, self.settings.miner.maintenance_interval_s, self._maintain,
                       "maintenance")
            ),
        ]
        stack.push_async_callback(_cancel, tasks)

    async def _axon_task(self, chain: ChainClient) -> list[asyncio.Task[None]]:
        """With ``--serve-axon``: publish now, then check again every metagraph refresh (an
        unchanged address costs one read; a refused one is published when the chain allows)."""
        if not self.settings.miner.serve_axon:
            return []
        ip, port = self.settings.miner.axon_ip(), self.settings.miner.port
        interval = self.settings.chain.metagraph_refresh_s
        await publish_axon(chain, ip, port, interval)
        check = partial(publish_axon, chain, ip, port, interval)
        return [asyncio.create_task(every(self.clock, interval, check, "axon check"))]

    async def _maintain(self) -> None:
        now = self.clock()
        await purge_expired(self.db, self.store_root, self.retention, now)
        await self.db.forget_nonces_before(now)
        await purge_early_leads(self.db, self.store_root, self.retention, now)
        data = self.settings.data
        await asyncio.to_thread(gfs_cache.prune, data.cache_dir.expanduser(),
                                gfs_cache.CacheBound.of(data), now)

    def _services(
        self, hotkey: str, registry: ValidatorRegistry, runner: JobRunner
    ) -> MinerServices:
        miner = self.settings.miner
        authenticator = Authenticator(
            own_hotkey=hotkey,
            db=self.db,
            registry=registry,
            api_limiter=RateLimiter(miner.rate_limit_per_minute),
            file_limiter=RateLimiter(miner.file_rate_limit_per_minute),
            stranger_limiter=AddressLimiter(miner.refused_per_address_per_minute),
            clock=self.clock,
        )
        jobs = JobService(
            own_hotkey=hotkey,
            model_name=miner.model,
            max_cycle_age=timedelta(hours=miner.max_cycle_age_hours),
            retry=RetryPolicy(
                max_attempts=miner.job_max_attempts,
                first_backoff=timedelta(seconds=miner.job_retry_backoff_s),
            ),
            db=self.db,
            runner=runner,
            clock=self.clock,
        )
        forecasts = ForecastFiles(db=self.db, store_root=self.store_root)
        return MinerServices(
            own_hotkey=hotkey, authenticator=authenticator, jobs=jobs, forecasts=forecasts
        )

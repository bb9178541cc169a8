"""``python -m gaia.localnet --days N``: the localnet's subnet lives N days as a live validator.

Everything runs in this process on one :class:`~gaia.clock.VirtualClock`, with production
durations: the scheduler's 18:00 run, 300 s polls, the plan's backoffs, the ERA5 delay, the
miners' retention and the hourly weights. The real validator (``validator_parts``: worker,
scheduler, scoring in a process pool) and the real miners (``create_app`` under uvicorn on
loopback, each with its own database and store) share the clock; a
:class:`~gaia.jobs.virtual_time.TimeMachine` moves it to the next due moment whenever the
validator's queue is settled and no miner is forecasting. The archive server publishes ERA5
``era5_delay`` behind the clock (it rewrites the store's ``valid_time_stop``), as the real
store does. Durations that only pace local bookkeeping (metagraph refreshes of a static
chain, the miner's maintenance wake-ups) are stretched, which changes no decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from gaia.chain.static import StaticChainClient
from gaia.cli import settings_from
from gaia.clock import VirtualClock
from gaia.config import Settings
from gaia.jobs.virtual_time import TimeMachine
from gaia.jobs.worker import Worker
from gaia.localnet.calendar_report import Calendar, CalendarObserver, day_record
from gaia.localnet.subnet import Member, Subnet
from gaia.miner import __main__ as miner_cli
from gaia.miner.app import create_app
from gaia.miner.database import UNFINISHED
from gaia.miner.runtime import MinerRuntime
from gaia.miner.server import server_config
from gaia.tasks.defined_tasks.weather.data.archive import ArchiveInfo, build_archive
from gaia.tasks.defined_tasks.weather.pipeline.timing import RunTiming, floor_to_cycle
from gaia.validator import __main__ as validator_cli
from gaia.validator.runtime import ValidatorParts, validator_parts

log = logging.getLogger(__name__)

CALENDAR_START = datetime(2025, 1, 1, tzinfo=UTC)  # the archive's first day; runs at 18:00
# A month of daily runs is a month of forecasts: 3 live miners write 2,760 chunk files each a
# day and validators read them for 10 days. The coarser grid keeps 17 days within minutes;
# every duration and every code path is production's either way.
CALENDAR_GRID_DEG = 10.0
BOOKKEEPING_INTERVAL_S = 6 * 3600  # metagraph refreshes of the static chain
VALIDATOR_FLAGS = ("--workers", "16", "--scoring-processes", "2", "--lease-s", "120",
                   "--metagraph-refresh-s", str(BOOKKEEPING_INTERVAL_S))
MINER_FLAGS = ("--metagraph-refresh-s", str(BOOKKEEPING_INTERVAL_S),
               "--maintenance-interval-s", str(BOOKKEEPING_INTERVAL_S))

Say = Callable[[str], None]


def calendar_archive(root: Path, days: int, grid_deg: float, seed: int) -> ArchiveInfo:
    """GFS cycles for ``days`` daily runs, ERA5 and climatology for them (built once)."""
    target = root / f"calendar-grid{grid_deg:g}-seed{seed}-days{days}"
    if (target / "archive.json").exists() and ArchiveInfo.load(target).is_current:
        return ArchiveInfo.load(target)
    log.info("building the calendar archive in %s", target)
    return build_archive(target, grid_deg=grid_deg, start=CALENDAR_START, days=days + 2,
                         cycle_days=days + 1, seed=seed)


def publish_era5_behind(clock: VirtualClock, info: ArchiveInfo,
                        delay: timedelta) -> Callable[[str, bytes], bytes]:
    """A rewrite for the archive server: the ERA5 store's ``valid_time_stop`` follows the
    clock, ``delay`` behind it (never past the archive's truth, never before its start)."""
    metadata = {f"{info.era5_path}/.zmetadata", f"{info.era5_path}/.zattrs"}

    def rewrite(path: str, body: bytes) -> bytes:
        if path not in metadata:
            return body
        stop = min(info.truth_until, max(info.start, floor_to_cycle(clock() - delay)))
        document = json.loads(body)
        attrs = document["metadata"][".zattrs"] if "metadata" in document else document
        attrs["valid_time_stop"] = stop.strftime("%Y-%m-%dT%H:%M:%S")
        return json.dumps(document).encode()

    return rewrite


class _InProcessServer(uvicorn.Server):
    """uvicorn without its signal handlers: the localnet handles Ctrl-C for everything."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class InProcessMiner:
    member: Member
    runtime: MinerRuntime
    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def running(self) -> bool:
        return not self.task.done()

    async def busy(self) -> bool:
        """A forecast is being fetched or computed (the clock must wait for it)."""
        return self.running and bool(await self.runtime.db.jobs_with_status(UNFINISHED))

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def start_miner(subnet: Subnet, member: Member, clock: VirtualClock) -> InProcessMiner:
    settings = miner_cli.settings_from_args([*subnet.miner_args(member, any_cycle_age=False),
                                            *MINER_FLAGS])
    runtime = MinerRuntime(settings, clock=clock)
    config = server_config(create_app(settings, runtime), settings.miner,
                           metrics=runtime.metrics, log_level="warning", access_log=False)
    server = _InProcessServer(config)
    task = asyncio.create_task(server.serve(), name=f"miner-{member.port}")
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
            raise RuntimeError(f"miner on port {member.port} stopped during start-up")
        await asyncio.sleep(0.02)
    return InProcessMiner(member, runtime, server, task)


def validator_settings(subnet: Subnet, database_url: str) -> Settings:
    """The settings ``python -m gaia.validator`` would build from the localnet's flags, with
    production durations (no shrunk polls or backoffs)."""
    argv = [*subnet.validator_args(database_url, fast=False), *VALIDATOR_FLAGS]
    base = Settings()
    return settings_from(validator_cli.build_parser(base).parse_args(argv), validator_cli.FLAGS,
                         base)


@dataclass(frozen=True)
class CalendarRun:
    days: int
    subnet: Subnet
    database_url: str
    say: Say


async def simulate(run: CalendarRun) -> Calendar:
    """Live through ``run.days`` days from 00:00 of the archive's first day; a line a day."""
    clock = VirtualClock(CALENDAR_START)
    timing = RunTiming()
    run.subnet.server.rewrite = publish_era5_behind(clock, run.subnet.archive, timing.era5_delay)
    engine = create_async_engine(run.database_url)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with _subnet_running(run, clock) as (miners, parts):
            return await _live(run, clock, factory, miners, parts)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _subnet_running(
    run: CalendarRun, clock: VirtualClock,
) -> AsyncIterator[tuple[list[InProcessMiner], ValidatorParts]]:
    async with AsyncExitStack() as stack:
        miners = []
        for member in run.subnet.miners:
            miner = await start_miner(run.subnet, member, clock)
            stack.push_async_callback(_stop_if_running, miner)
            miners.append(miner)
        settings = validator_settings(run.subnet, run.database_url)
        parts = await stack.enter_async_context(
            validator_parts(settings, with_scheduler=True, clock=clock))
        worker = asyncio.create_task(parts.worker.run(), name="validator-worker")
        stack.push_async_callback(_stop_worker, parts.worker, worker)
        yield miners, parts


async def _stop_if_running(miner: InProcessMiner) -> None:
    if miner.running:
        await miner.stop()


async def _stop_worker(worker: Worker, task: asyncio.Task[None]) -> None:
    worker.stop()
    await task


async def _live(run: CalendarRun, clock: VirtualClock,
                factory: async_sessionmaker[AsyncSession], miners: list[InProcessMiner],
                parts: ValidatorParts) -> Calendar:
    scheduler = parts.scheduler
    assert scheduler is not None
    chain = StaticChainClient(run.subnet.chain_path, hotkey=run.subnet.validator.hotkey)
    observer = CalendarObserver(factory, miners, run.say)
    machine = TimeMachine(
        clock, factory, [parts.worker], busy=[m.busy for m in miners],
        events=[scheduler.next_due], on_tick=lambda _now: scheduler.tick(),
        on_settled=observer.observe,
    )
    calendar = Calendar(started=CALENDAR_START)
    for index in range(run.days):
        submitted_before = len(chain.weight_history(run.subnet.validator.hotkey))
        end_of_day = CALENDAR_START + timedelta(days=index + 1)
        await machine.run_until(end_of_day)
        history = chain.weight_history(run.subnet.validator.hotkey)
        async with factory() as session:
            record = await day_record(session, run.subnet, end_of_day, observer.leads_scored,
                                      history[submitted_before:])
        calendar.days.append(record)
        run.say(record.line(index + 1))
    calendar.jumps = machine.jumps
    calendar.waited_s = {cause: round(s, 1) for cause, s in machine.waited_s.items()}
    return calendar

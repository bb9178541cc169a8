"""One localnet session: start everything in order, drive the run, report, stop everything."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from gaia.config import Settings
from gaia.database.local_postgres import PostgresNotFound, PostgresStartFailed
from gaia.localnet.aurora import aurora_miner_args
from gaia.localnet.calendar import CALENDAR_START, CalendarRun, calendar_archive, simulate
from gaia.localnet.calendar_report import problems, write_calendar
from gaia.localnet.database import (
    DatabaseUnavailable,
    LocalnetDatabase,
    configured_server_url,
    prepare_database,
)
from gaia.localnet.display import PlainDisplay, labels_of, make_display
from gaia.localnet.driver import (
    RunTimedOut,
    RunWatcher,
    ValidatorDied,
    run_weights,
    start_hindcast,
    submit_weights,
)
from gaia.localnet.processes import ProcessFailed
from gaia.localnet.report import Scoreboard, format_scoreboard, gather, write_report
from gaia.localnet.subnet import (
    MinerSpec,
    Subnet,
    cached_archive,
    clear_away,
    miner_roster,
    new_subnet,
)
from gaia.tasks.defined_tasks.weather.inference.aurora_loader import AuroraSetupError
from gaia.tasks.defined_tasks.weather.pipeline.timing import RunTiming
from gaia.tasks.defined_tasks.weather.states import RunStatus
from gaia.validator.weights import NoPositiveScores, WeightVector


@dataclass(frozen=True)
class LocalnetOptions:
    miners: int = 4
    grid_deg: float = 5.0
    seed: int = 11
    workdir: Path = Path(".gaia")
    timeout_s: float = 600.0
    keep_running: bool = False
    database_name: str = "gaia_localnet"
    validator_processes: int = 1
    plain: bool = False
    days: int | None = None  # live as a validator for this many simulated days instead
    models: tuple[str, ...] | None = None  # one per miner; None: the default roster
    aurora_checkpoint: Path | None = None  # None: a tiny random-weight Aurora
    aurora_variant: str | None = None


Say = Callable[[str], None]


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextmanager
def _signals(handler: signal.Handlers | object) -> Iterator[None]:
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        signal.signal(signum, handler)  # type: ignore[arg-type]
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def run_localnet(options: LocalnetOptions, settings: Settings) -> int:
    """Exit status: 0 when the run completed, 1 when it did not, 130 when interrupted."""
    started = time.monotonic()
    say = PlainDisplay([], started).note
    stack = ExitStack()
    try:
        with _signals(_interrupt):
            return _session(options, settings, stack, say, started)
    except Interrupted as signal_name:
        say(f"{signal_name} received: stopping everything")
        return 130
    except (PostgresNotFound, PostgresStartFailed, DatabaseUnavailable, ProcessFailed,
            RunTimedOut, ValidatorDied, AuroraSetupError) as error:
        say(f"localnet failed: {error}")
        return 1
    finally:
        with _signals(signal.SIG_IGN):  # a second Ctrl-C must not leave processes behind
            stack.close()
        say("everything the localnet started is stopped")


def _session(options: LocalnetOptions, settings: Settings, stack: ExitStack, say: Say,
             started: float) -> int:
    workdir = options.workdir.resolve()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    database = _database(options, settings, workdir, stack, say)
    if options.days is not None:
        return _calendar_session(options, workdir, database, stack, say, stamp)
    subnet = _subnet(options, workdir, database, stack, say)
    board = _drive(options, subnet, database, started)
    print(format_scoreboard(board), flush=True)
    _print_weights(board, subnet)
    json_path, png_path = write_report(board, workdir / "reports" / stamp)
    print(f"report: {png_path}\n        {json_path}\nlogs:   {subnet.root / 'logs'}", flush=True)
    if options.keep_running:
        _keep_running(subnet, database)
    return 0 if board.run_status is RunStatus.COMPLETED else 1


def _calendar_session(options: LocalnetOptions, workdir: Path, database: LocalnetDatabase,
                      stack: ExitStack, say: Say, stamp: str) -> int:
    assert options.days is not None
    began = time.monotonic()
    archive = calendar_archive(workdir / "archive", options.days, options.grid_deg, options.seed)
    say(f"calendar archive {archive.root} ready in {time.monotonic() - began:.1f} s "
        f"(GFS cycles for {options.days} daily runs, ERA5 published 5 days behind the clock)")
    stack.callback(clear_away(workdir / "subnet").join)
    subnet = new_subnet(workdir / "subnet", archive, _roster(options, workdir, say))
    stack.callback(subnet.stop)
    say(f"{options.days} simulated days from {CALENDAR_START:%Y-%m-%d} on a virtual clock, "
        "production durations; validator and miners in this process")
    calendar = asyncio.run(simulate(CalendarRun(options.days, subnet, database.url, say)))
    json_path, png_path = write_calendar(calendar, workdir / "reports" / stamp)
    found = problems(calendar, RunTiming())
    for problem in found:
        say(f"problem: {problem}")
    say(f"{options.days} days lived in {time.monotonic() - began:.0f} s ({calendar.jumps} clock "
        f"jumps; real seconds by cause {calendar.waited_s}); report: {json_path}\n"
        f"        {png_path}")
    return 0 if not found else 1


def _database(options: LocalnetOptions, settings: Settings, workdir: Path, stack: ExitStack,
              say: Say) -> LocalnetDatabase:
    cluster_dir = workdir / "postgres"
    configured = configured_server_url(settings) is not None
    say("PostgreSQL: " + ("the server at GAIA_DATABASE_URL" if configured
                          else f"a private cluster in {cluster_dir}"))
    database = prepare_database(settings, cluster_dir, options.database_name)
    stack.callback(database.stop)
    say(f"database {options.database_name} created anew and migrated to head")
    return database


def _roster(options: LocalnetOptions, workdir: Path, say: Say) -> list[MinerSpec]:
    models = options.models
    model_args = {}
    if models is not None and "aurora" in models:
        model_args["aurora"] = aurora_miner_args(
            workdir / "models", options.grid_deg, options.aurora_checkpoint,
            options.aurora_variant, say)
    return miner_roster(options.miners if models is None else len(models), models, model_args)


def _subnet(options: LocalnetOptions, workdir: Path, database: LocalnetDatabase,
            stack: ExitStack, say: Say) -> Subnet:
    began = time.monotonic()
    say(f"local archive ({options.grid_deg:g}° grid, seed {options.seed}): built on first "
        "use, then reused")
    archive = cached_archive(workdir / "archive", options.grid_deg, options.seed)
    say(f"local archive {archive.root} ready in {time.monotonic() - began:.1f} s")
    stack.callback(clear_away(workdir / "subnet").join)
    subnet = new_subnet(workdir / "subnet", archive, _roster(options, workdir, say))
    stack.callback(subnet.stop)
    say(f"archive served at {subnet.server.url}; static chain {subnet.chain_path}")
    subnet.start_miners()
    for miner in subnet.miners:
        assert miner.spec is not None
        say(f"miner {miner.spec.role} (uid {miner.uid}, {miner.spec.model}"
            f"{', will be killed mid-run' if miner.spec.dies else ''}) at {miner.url}")
    subnet.start_validator(database.url, options.validator_processes)
    say(f"validator: {options.validator_processes} worker process(es), hotkey "
        f"{subnet.validator.hotkey}; process ids in {subnet.write_process_list()}")
    return subnet


def _drive(options: LocalnetOptions, subnet: Subnet, database: LocalnetDatabase,
           started: float) -> Scoreboard:
    display = make_display(labels_of(subnet.miners), started, force_plain=options.plain)
    # the loop's own signal handlers are removed on exit, which resets SIGINT and SIGTERM to
    # Python's defaults: put the localnet's handlers back afterwards
    with display, _signals(_interrupt):
        return asyncio.run(_drive_async(options, subnet, database.url, display))


async def _drive_async(options: LocalnetOptions, subnet: Subnet, url: str,
                       display: PlainDisplay) -> Scoreboard:
    engine = create_async_engine(url)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    stop, received = asyncio.Event(), list[str]()

    def on_signal(signum: signal.Signals) -> None:
        received.append(signum.name)
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        window = timedelta(seconds=options.timeout_s)
        display.note(await start_hindcast(factory, subnet, window))
        watcher = RunWatcher(subnet, factory, display.update, display.note, stop)
        snapshot = await watcher.until_finished(options.timeout_s)
        if received:
            raise Interrupted(received[0])
        assert snapshot.run_id is not None and snapshot.run_status is not None
        weights, weights_file = await _weights(factory, subnet, snapshot.run_id,
                                               snapshot.run_status, display)
        async with factory() as session:
            return await gather(session, subnet, snapshot.run_id, snapshot.run_status,
                                weights, weights_file)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await engine.dispose()


async def _weights(factory: async_sessionmaker, subnet: Subnet, run_id: int, status: RunStatus,
                   display: PlainDisplay) -> tuple[WeightVector | None, Path | None]:
    if status is not RunStatus.COMPLETED:
        return None, None
    try:
        vector = await run_weights(factory, run_id)
    except NoPositiveScores:
        display.note("no miner has a positive run score: no weights to set")
        return None, None
    chain = await submit_weights(subnet, vector)
    return vector, chain.weights_dir / f"{subnet.validator.hotkey}.json"


def _print_weights(board: Scoreboard, subnet: Subnet) -> None:
    if board.weights_file is None:
        print("weights: none were set (the run did not complete with a positive score)")
        return
    print("weights: a local demonstration of weight setting. A hindcast never feeds the "
          "validator's periodic weights job, so the localnet applied the validator's "
          "compute_weights to this run's roll-up scores (window 1, power 2) and submitted "
          f"them to the static chain as the validator's hotkey {subnet.validator.hotkey}: "
          f"{board.weights_file}", flush=True)


def _keep_running(subnet: Subnet, database: LocalnetDatabase) -> None:
    lines = ["the subnet stays up until Ctrl-C:",
             f"  database:  {database.url}",
             f"  archive:   {subnet.server.url}  (GFS {subnet.gfs_base_url})",
             f"  chain:     {subnet.chain_path}"]
    for miner in subnet.miners:
        assert miner.spec is not None and miner.process is not None
        state = "running" if miner.process.running() else "stopped (killed mid-run)"
        lines.append(f"  {miner.spec.role:<8} {miner.url}  {miner.spec.model}, {state}")
    lines.append(f"  inspect:   python -m gaia.validator.admin --database-url {database.url} runs")
    print("\n".join(lines), flush=True)
    try:
        threading.Event().wait()
    except Interrupted as signal_name:
        print(f"{signal_name} received: stopping the subnet", flush=True)

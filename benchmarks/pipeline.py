"""Benchmark: time to the first, median and last day-1 score of a run, N simulated miners.

The validator side is the real one: a fresh PostgreSQL database migrated to head, the local
archive (5 degree) on a loopback ``ArchiveServer``, a static chain file listing the miners
with their ports; the run is created by enqueueing ``weather.run.create`` as the scheduler
would. The miners are ``benchmarks/sim_miner.py`` (one port and one real wallet each; they
sleep instead of forecasting and serve a real signed store, see its docstring).

Two clocks (``--clock``):

* ``virtual`` (default): production durations. One process: the real validator
  (``gaia.validator.runtime.validator_parts``: registry, worker, scoring service) runs its
  worker as a task on a ``VirtualClock``, and the simulated miners serve from the same event
  loop, their answers a pure function of that clock. ``gaia.jobs.virtual_time.TimeMachine``
  jumps the clock to the next due job once everything is idle, so hours take seconds to
  minutes. Poll interval 300 s, the plan's backoffs (scale 1), I ~ U(2, 10) min, D ~ U(10, 40)
  min per miner. The clock starts at the run's scheduled moment (init + 6 h; the init is the
  latest complete cycle) and the commit deadline is the production one (init + 9.5 h).
  Validator compute takes no virtual time (the clock stands still while work runs).
* ``real``: compressed real time with ``python -m gaia.validator worker`` processes (poll
  every 5 s, backoff scale 0.01, I ~ U(2, 20) s, D = 10 s).

Flows, with the same miners and seed:

* ``streaming`` (this design): a miner starts inference the moment it is asked;
* ``barrier`` (the old flow, as a model): no inference starts before every miner has been
  asked and has finished its input phase, and (virtual clock) not before the old
  validator's fixed 10-minute wait for the input hashes after the asks (``--hash-wait-s``);
* ``ready`` (virtual clock only): every miner has the forecast already when asked (computed
  for another validator); it must be committed at once.

Times are from the enqueue of ``weather.run.create`` to the asks (``inference_started_at``),
the ``forecast_ready`` commits (``manifest_fetched_at``) and the finished
``weather.day1_score`` jobs. The archive's ERA5 ends before the run's +240 h, so the benchmark
stops after day 1.

    .venv/bin/python benchmarks/pipeline.py                       # 256 miners, virtual clock
    .venv/bin/python benchmarks/pipeline.py --flows streaming barrier ready
    .venv/bin/python benchmarks/pipeline.py --clock real --miners 64 --flows streaming
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import bittensor as bt
from sim_miner import (  # benchmarks/ is the script's dir
    SimConfig,
    SimMinerSpec,
    input_times,
    start_fleet,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from gaia.chain.client import Neuron
from gaia.chain.static import write_neurons
from gaia.clock import VirtualClock
from gaia.config import ChainSettings, DataSettings, Settings, ValidatorSettings, WalletSettings
from gaia.database import migrations
from gaia.jobs.queue import JobQueue
from gaia.jobs.virtual_time import TimeMachine
from gaia.tasks.defined_tasks.weather.data.archive import ArchiveInfo, build_archive
from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import RunCreatePayload
from gaia.tasks.defined_tasks.weather.pipeline.timing import CYCLE, RunTiming
from gaia.tasks.defined_tasks.weather.pipeline.workers import all_policies
from gaia.tasks.defined_tasks.weather.states import RunMode
from gaia.validator.runtime import validator_parts

REPO = Path(__file__).resolve().parents[1]
SIM_SCRIPT = Path(__file__).with_name("sim_miner.py")
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ARCHIVE_START = datetime(2025, 1, 1, tzinfo=UTC)
VALIDATOR_STAKE = 50_000.0
FLOWS = ("streaming", "barrier")


@dataclass(frozen=True)
class Bench:
    """What every flow shares: settings, wallets, ports, the archive."""

    args: argparse.Namespace
    root: Path
    archive: ArchiveInfo
    server_url: str
    validator: bt.Wallet
    miners: list[bt.Wallet]
    ports: list[int]

    @property
    def init_time(self) -> datetime:
        return self.archive.init_times[0]


@dataclass
class FlowResult:
    flow: str
    seconds: dict[str, float]  # milestone -> seconds after the run.create enqueue
    counts: dict[str, int]  # response status -> miners
    failures: list[str]
    cpu_s: dict[str, float]  # process -> CPU seconds used
    load: tuple[float, float]  # 1-min load average before and after
    deadlocks: int  # DeadlockDetectedError tracebacks in the worker logs
    jumps: int = 0  # virtual clock: moments the TimeMachine jumped to


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [int(s.getsockname()[1]) for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


def make_wallet(root: Path, name: str) -> bt.Wallet:
    wallet = bt.Wallet(name=name, hotkey="default", path=str(root))
    wallet.create_new_coldkey(use_password=False, suppress=True)
    wallet.create_new_hotkey(use_password=False, suppress=True)
    return wallet


def neuron(wallet: bt.Wallet, uid: int, port: int | None) -> Neuron:
    validator = port is None
    return Neuron(uid=uid, hotkey=wallet.hotkey.ss58_address, coldkey=wallet.coldkeypub.ss58_address,
                  ip=None if validator else "127.0.0.1", port=port,
                  stake=VALIDATOR_STAKE if validator else 0.0, validator_permit=validator)


def asyncpg_url(server_url: str, database: str, driver: str = "postgresql+asyncpg") -> str:
    return make_url(server_url).set(drivername=driver, database=database).render_as_string(
        hide_password=False)


async def _admin(server_url: str, statement: str) -> None:
    conn = await asyncpg.connect(asyncpg_url(server_url, "postgres", "postgresql"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    name = f"gaia_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        url = asyncpg_url(server_url, name)
        migrations.upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def process(argv: Sequence[str], log: Path, cpu: dict[str, float], name: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    with log.open("ab") as out:
        proc = subprocess.Popen(list(argv), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            cpu[name] = cpu_seconds(proc.pid)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def sim_config(bench: Bench, flow: str, work: Path) -> Path:
    config = SimConfig(
        miners=[SimMinerSpec(wallet_name=w.name, wallet_path=str(w.path), port=p)
                for w, p in zip(bench.miners, bench.ports, strict=True)],
        init_time=bench.init_time, gfs_base_url=bench.archive.gfs_base_url(bench.args.archive_url),
        work_dir=work, inference_s=bench.args.inference_s, input_min_s=bench.args.input_min_s,
        input_max_s=bench.args.input_max_s, seed=bench.args.seed, barrier=flow == "barrier",
        ready_path=work / "ready", events_path=work / "events.json",
    )
    path = work / "sim.json"
    path.write_text(config.model_dump_json())
    return path


def worker_argv(bench: Bench, database_url: str, cache: Path) -> list[str]:
    a, urls = bench.args, bench.archive
    return [
        sys.executable, "-m", "gaia.validator", "worker",
        "--database-url", database_url,
        "--wallet.name", bench.validator.name, "--wallet.hotkey", "default",
        "--wallet.path", str(bench.validator.path),
        "--chain", "static", "--chain.static-path", str(bench.root / "neurons.json"),
        "--gfs.base-url", urls.gfs_base_url(a.archive_url), "--gfs.fallback-url", "",
        "--data.cache-dir", str(cache),
        "--era5.url", urls.era5_url(a.archive_url),
        "--climatology.url", urls.climatology_url(a.archive_url),
        "--poll-interval-s", str(a.poll_interval_s), "--backoff-scale", str(a.backoff_scale),
        "--lease-s", str(a.lease_s), "--scoring-processes", str(a.scoring_processes), "--workers", str(a.workers),
        "--allow-private-axons",  # every simulated miner is on loopback
        "--log-level", "WARNING",
    ]


async def create_run(database_url: str, init_time: datetime) -> None:
    engine = create_async_engine(database_url)
    try:
        payload = RunCreatePayload(init_time=init_time, mode=RunMode.LIVE,
                                   commit_deadline=datetime.now(UTC) + timedelta(hours=1))
        async with async_sessionmaker(engine).begin() as session:
            await JobQueue(all_policies()).enqueue(session, WeatherJob.RUN_CREATE, payload,
                                                   singleton_key="weather.run.create:bench")
    finally:
        await engine.dispose()


async def status_counts(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status::text, count(*) FROM weather_miner_responses GROUP BY 1")
    return {r[0]: int(r[1]) for r in rows}


async def wait_for_day1(database_url: str, miners: int, timeout_s: float,
                        workers: list[subprocess.Popen[bytes]]) -> dict[str, int]:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            counts = await status_counts(conn)
            done = counts.get("day1_scored", 0) + counts.get("failed", 0)
            if done >= miners or time.monotonic() > deadline:
                return counts
            if any(w.poll() is not None for w in workers):
                raise RuntimeError("a validator worker exited; see its log")
            await asyncio.sleep(1.0)
    finally:
        await conn.close()


MILESTONES_SQL = """
WITH t0 AS (SELECT created_at AS at FROM validator_jobs WHERE job_type = 'weather.run.create')
SELECT
  (SELECT extract(epoch FROM finished_at - t0.at) FROM validator_jobs
     WHERE job_type = 'weather.seed') AS gfs_ready,
  (SELECT extract(epoch FROM min(inference_started_at) - t0.at) FROM weather_miner_responses)
     AS first_asked,
  (SELECT extract(epoch FROM max(inference_started_at) - t0.at) FROM weather_miner_responses)
     AS last_asked,
  (SELECT extract(epoch FROM min(manifest_fetched_at) - t0.at) FROM weather_miner_responses)
     AS first_ready,
  (SELECT extract(epoch FROM max(manifest_fetched_at) - t0.at) FROM weather_miner_responses)
     AS last_ready,
  (SELECT extract(epoch FROM min(finished_at) - t0.at) FROM validator_jobs
     WHERE job_type = 'weather.day1_score' AND status = 'succeeded') AS first_day1,
  (SELECT extract(epoch FROM max(finished_at) - t0.at) FROM validator_jobs
     WHERE job_type = 'weather.day1_score' AND status = 'succeeded') AS last_day1,
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM manifest_fetched_at - t0.at))
     FROM weather_miner_responses WHERE manifest_fetched_at IS NOT NULL) AS median_ready,
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - t0.at))
     FROM validator_jobs WHERE job_type = 'weather.day1_score' AND status = 'succeeded')
     AS median_day1,
  (SELECT extract(epoch FROM t0.at) FROM t0) AS t0_epoch
FROM t0
"""


async def milestones(database_url: str) -> tuple[dict[str, float], list[str]]:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        row = await conn.fetchrow(MILESTONES_SQL)
        failures = await conn.fetch(
            "SELECT failed_step, left(failure_reason, 160) FROM weather_miner_responses "
            "WHERE status = 'failed' LIMIT 5")
    finally:
        await conn.close()
    seconds = {k: float(v) for k, v in dict(row).items() if v is not None}
    return seconds, [f"{r[0]}: {r[1]}" for r in failures]


def miner_side(events_path: Path, t0: float) -> dict[str, float]:
    """When the simulated forecasts actually became ready (the sim's own clock)."""
    events = json.loads(events_path.read_text())
    ready = [e["ready_at"] - t0 for e in events if e["ready_at"] is not None]
    return {"sim_first_ready": min(ready), "sim_last_ready": max(ready)} if ready else {}


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{proc.args!r} did not get ready; log:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def run_flow(bench: Bench, flow: str) -> FlowResult:
    work = bench.root / flow
    work.mkdir()
    cpu: dict[str, float] = {}
    load_before = os.getloadavg()[0]
    with ExitStack() as stack:
        database_url = stack.enter_context(scratch_database(bench.server_url))
        sim_log = work / "sim.log"
        sim = stack.enter_context(process([sys.executable, str(SIM_SCRIPT),
                                           str(sim_config(bench, flow, work))], sim_log, cpu, "sim"))
        wait_for_file(work / "ready", sim, 300, sim_log)
        workers = [stack.enter_context(process(worker_argv(bench, database_url, work / "cache"),
                                               work / f"worker-{i}.log", cpu, f"worker-{i}"))
                   for i in range(bench.args.worker_processes)]
        time.sleep(3.0)  # let the workers connect and go idle before the clock starts
        asyncio.run(create_run(database_url, bench.init_time))
        counts = asyncio.run(wait_for_day1(database_url, len(bench.miners), bench.args.timeout_s,
                                           workers))
        seconds, failures = asyncio.run(milestones(database_url))
        t0 = seconds.pop("t0_epoch")
    seconds.update(miner_side(work / "events.json", t0))
    deadlocks = sum(log.read_text(errors="replace").count("DeadlockDetectedError:")
                    for log in work.glob("worker-*.log"))
    return FlowResult(flow, seconds, counts, failures, cpu, (load_before, os.getloadavg()[0]),
                      deadlocks)


# --- the virtual clock: production durations, one process -------------------------------

VIRTUAL_FLOWS = ("streaming", "barrier", "ready")


def virtual_sim_config(bench: Bench, flow: str, work: Path) -> SimConfig:
    a = bench.args
    ready = flow == "ready"  # every miner has this forecast already (computed for another validator)
    return SimConfig(
        miners=[SimMinerSpec(wallet_name=w.name, wallet_path=str(w.path), port=p)
                for w, p in zip(bench.miners, bench.ports, strict=True)],
        init_time=bench.init_time, gfs_base_url=bench.archive.gfs_base_url(a.archive_url),
        work_dir=work, inference_s=0.0 if ready else a.inference_s,
        inference_min_s=None if ready else a.inference_min_s,
        inference_max_s=None if ready else a.inference_max_s,
        input_min_s=0.0 if ready else a.input_min_s, input_max_s=0.0 if ready else a.input_max_s,
        seed=a.seed, barrier=flow == "barrier", hash_wait_s=a.hash_wait_s,
        ready_path=work / "ready", events_path=work / "events.json",
    )


def validator_settings(bench: Bench, database_url: str, cache: Path) -> Settings:
    a, urls = bench.args, bench.archive
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url, log_level="WARNING",
        wallet=WalletSettings(name=bench.validator.name, hotkey="default",
                              path=Path(bench.validator.path)),
        chain=ChainSettings(kind="static", static_path=bench.root / "neurons.json"),
        data=DataSettings(gfs_base_url=urls.gfs_base_url(a.archive_url), gfs_fallback_url=None,
                          era5_url=urls.era5_url(a.archive_url),
                          climatology_url=urls.climatology_url(a.archive_url), cache_dir=cache),
        validator=ValidatorSettings(workers=a.workers, poll_interval_s=a.poll_interval_s,
                                    backoff_scale=a.backoff_scale, lease_s=a.lease_s,
                                    scoring_processes=a.scoring_processes,
                                    allow_private_axons=True),  # the miners are on loopback
    )


class Stamps:
    """The virtual moment each job finished. The clock stands still while work runs and the
    TimeMachine jumps only once everything is settled, so a job that succeeded since the last
    jump finished at the moment before it (the database's ``finished_at`` is real time)."""

    TYPES = (WeatherJob.SEED, WeatherJob.DAY1_SCORE)

    def __init__(self, session_factory: async_sessionmaker[Any], clock: VirtualClock,
                 miners: int) -> None:
        self.session_factory, self.miners = session_factory, miners
        self.moment = clock()
        self.at: dict[int, tuple[str, datetime]] = {}
        self.failed = 0

    async def tick(self, moment: datetime) -> None:
        async with self.session_factory() as session:
            rows = (await session.execute(text(
                "SELECT id, job_type FROM validator_jobs WHERE status = 'succeeded' "
                "AND job_type = ANY(:types)"), {"types": list(self.TYPES)})).all()
            self.failed = int(await session.scalar(text(
                "SELECT count(*) FROM weather_miner_responses WHERE status = 'failed'")) or 0)
        for job_id, job_type in rows:
            self.at.setdefault(int(job_id), (str(job_type), self.moment))
        self.moment = moment

    def times(self, job_type: str) -> list[datetime]:
        return sorted(at for kind, at in self.at.values() if kind == job_type)

    @property
    def done(self) -> bool:
        return len(self.times(WeatherJob.DAY1_SCORE)) + self.failed >= self.miners


async def virtual_flow(bench: Bench, flow: str, work: Path, database_url: str) -> FlowResult:
    init = bench.init_time
    timing = RunTiming()
    start = init + CYCLE  # the run's scheduled moment: the init is the latest complete cycle
    clock = VirtualClock(start)
    began, load_before = time.monotonic(), os.getloadavg()[0]
    settings = validator_settings(bench, database_url, work / "cache")
    config = virtual_sim_config(bench, flow, work)
    async with (start_fleet(config, lambda: clock().timestamp()) as fleet,
                validator_parts(settings, with_scheduler=False, clock=clock) as parts):
        session_factory = async_sessionmaker(parts.engine, expire_on_commit=False)
        stamps = Stamps(session_factory, clock, len(bench.miners))
        worker = asyncio.create_task(parts.worker.run())
        try:
            payload = RunCreatePayload(init_time=init, mode=RunMode.LIVE,
                                       commit_deadline=timing.commit_deadline(init))
            async with session_factory.begin() as session:
                await JobQueue(all_policies(), clock).enqueue(
                    session, WeatherJob.RUN_CREATE, payload,
                    singleton_key="weather.run.create:bench")
            machine = TimeMachine(clock, session_factory, [parts.worker], on_tick=stamps.tick,
                                  settle_limit_s=bench.args.settle_limit_s)
            limit = payload.commit_deadline + timedelta(hours=1)
            while not stamps.done and await machine.step(limit):
                if worker.done():
                    worker.result()
                    raise RuntimeError("the validator worker stopped")
            if not stamps.done:
                await machine.settle()
                await stamps.tick(clock())
        finally:
            parts.worker.stop()
            await worker
        seconds, failures = await virtual_milestones(session_factory, start, stamps)
        counts = await _status_counts(session_factory)
        events = fleet.events()
    wall = time.monotonic() - began
    seconds.update(miner_side_events(events, start.timestamp()))
    return FlowResult(flow, seconds, counts, failures, {"wall": wall},
                      (load_before, os.getloadavg()[0]), 0, jumps=machine.jumps)


async def _status_counts(session_factory: async_sessionmaker[Any]) -> dict[str, int]:
    async with session_factory() as session:
        rows = (await session.execute(text(
            "SELECT status::text, count(*) FROM weather_miner_responses GROUP BY 1"))).all()
    return {r[0]: int(r[1]) for r in rows}


async def virtual_milestones(session_factory: async_sessionmaker[Any], start: datetime,
                             stamps: Stamps) -> tuple[dict[str, float], list[str]]:
    async with session_factory() as session:
        rows = (await session.execute(text(
            "SELECT inference_started_at, manifest_fetched_at FROM weather_miner_responses"))).all()
        failures = (await session.execute(text(
            "SELECT failed_step, left(failure_reason, 160) FROM weather_miner_responses "
            "WHERE status = 'failed' LIMIT 5"))).all()

    def since(moments: Sequence[datetime | None]) -> list[float]:
        return sorted((m - start).total_seconds() for m in moments if m is not None)

    series = {
        "asked": since([r[0] for r in rows]),
        "ready": since([r[1] for r in rows]),
        "day1": since(stamps.times(WeatherJob.DAY1_SCORE)),
    }
    seconds: dict[str, float] = {}
    seed = since(stamps.times(WeatherJob.SEED))
    if seed:
        seconds["gfs_ready"] = seed[0]
    for name, values in series.items():
        if values:
            seconds[f"first_{name}"] = values[0]
            seconds[f"median_{name}"] = statistics.median(values)
            seconds[f"last_{name}"] = values[-1]
    ask_to_ready = sorted((r[1] - r[0]).total_seconds() for r in rows
                          if r[0] is not None and r[1] is not None)
    if ask_to_ready:
        seconds["max_ask_to_ready"] = ask_to_ready[-1]
    return seconds, [f"{r[0]}: {r[1]}" for r in failures]


def miner_side_events(events: list[dict[str, Any]], t0: float) -> dict[str, float]:
    ready = sorted(e["ready_at"] - t0 for e in events if e["ready_at"] is not None)
    if not ready:
        return {}
    return {"sim_first_ready": ready[0], "sim_median_ready": statistics.median(ready),
            "sim_last_ready": ready[-1]}


def run_virtual_flow(bench: Bench, flow: str) -> FlowResult:
    work = bench.root / flow
    work.mkdir()
    handler = logging.FileHandler(work / "validator.log")
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        with scratch_database(bench.server_url) as database_url:
            result = asyncio.run(virtual_flow(bench, flow, work, database_url))
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    log_text = (work / "validator.log").read_text(errors="replace")
    result.deadlocks = log_text.count("DeadlockDetectedError")
    return result


ROWS = (
    ("gfs_ready", "day-1 reference downloaded (seed done)"),
    ("first_asked", "first miner asked (inference_started_at)"),
    ("last_asked", "last miner asked"),
    ("sim_first_ready", "first forecast ready at the miner"),
    ("first_ready", "first forecast_ready committed"),
    ("first_day1", "**first day-1 score**"),
    ("sim_median_ready", "median forecast ready at the miner"),
    ("median_ready", "median forecast_ready committed"),
    ("median_day1", "**median day-1 score**"),
    ("sim_last_ready", "last forecast ready at the miner"),
    ("last_ready", "last forecast_ready committed"),
    ("last_day1", "last day-1 score"),
    ("max_ask_to_ready", "longest ask -> forecast_ready committed, one miner"),
)


def report(bench: Bench, results: list[FlowResult]) -> None:
    a = bench.args
    virtual = a.clock == "virtual"
    unit, scale = ("min", 60.0) if virtual else ("s", 1.0)
    n = len(bench.miners)
    inputs = input_times(n, a.input_min_s, a.input_max_s, a.seed)
    if virtual:
        durations = input_times(n, a.inference_min_s, a.inference_max_s, a.seed + 1)
        d_text = (f"D ~ U({a.inference_min_s / 60:g}, {a.inference_max_s / 60:g}) min (min "
                  f"{min(durations) / 60:.1f}, median {statistics.median(durations) / 60:.1f}, max "
                  f"{max(durations) / 60:.1f})")
    else:
        d_text = f"D = {a.inference_s:g} s"
    print(f"\nclock {a.clock}; N = {n} miners, {d_text}, I ~ U({a.input_min_s / scale:g}, "
          f"{a.input_max_s / scale:g}) {unit} seed {a.seed} (min {min(inputs) / scale:.1f}, median "
          f"{statistics.median(inputs) / scale:.1f}, max {max(inputs) / scale:.1f}); "
          f"{a.worker_processes if not virtual else 1} worker process(es) x {a.workers} handlers, "
          f"{a.scoring_processes} scoring processes each, poll every {a.poll_interval_s:g} s, "
          f"backoff scale {a.backoff_scale:g}"
          + (f", barrier hash wait {a.hash_wait_s:g} s" if virtual else "")
          + f"; {os.cpu_count()} CPUs")
    print(f"\n| milestone ({unit} after run.create) | {' | '.join(r.flow for r in results)} |")
    print(f"|---|{'---|' * len(results)}")
    for key, label in ROWS:
        cells = [f"{r.seconds[key] / scale:.1f}" if key in r.seconds else "-" for r in results]
        if any(c != "-" for c in cells):
            print(f"| {label} | {' | '.join(cells)} |")
    for r in results:
        cpu = {k: round(v, 1) for k, v in r.cpu_s.items()}
        what = (f"real wall {cpu.get('wall', 0):.0f} s, {r.jumps} clock jumps" if virtual else
                f"CPU s (worker without its scoring processes) {cpu}")
        print(f"\n{r.flow}: statuses {r.counts}; {what}; "
              f"load {r.load[0]:.2f} -> {r.load[1]:.2f}; deadlocks retried {r.deadlocks}")
        for failure in r.failures:
            print(f"  failed: {failure}")
    by_flow = {r.flow: r for r in results}
    if set(FLOWS) <= set(by_flow):
        for key, what in (("first_day1", "first"), ("median_day1", "median"),
                          ("last_day1", "last")):
            if all(key in by_flow[f].seconds for f in FLOWS):
                s_, b_ = (by_flow[f].seconds[key] / scale for f in FLOWS)
                print(f"time to {what} day-1 score: streaming / barrier = {s_:.1f} / {b_:.1f} "
                      f"{unit} = {s_ / b_:.0%}" + (" (plan: <= 50 %)" if what == "first" else ""))
    if "ready" in by_flow and "max_ask_to_ready" in by_flow["ready"].seconds:
        print(f"ready when asked: longest ask -> forecast_ready committed = "
              f"{by_flow['ready'].seconds['max_ask_to_ready']:.1f} s (virtual)")
    if not virtual:
        for r in results:
            miner_time = max(inputs) + a.inference_s
            if "last_ready" in r.seconds and "first_asked" in r.seconds:
                took = r.seconds["last_ready"] - r.seconds["first_asked"]
                print(f"{r.flow}: first ask -> last forecast_ready {took:.1f} s; slowest miner "
                      f"I+D = {miner_time:.1f} s; target 1.1 x {miner_time:.1f} + 5 = "
                      f"{1.1 * miner_time + 5:.1f} s; sequential: {n} x D = "
                      f"{n * a.inference_s:.0f} s")


# per clock: (poll interval s, backoff scale, lease s, I min s, I max s, D s, D min s, D max s)
MODE_DEFAULTS: dict[str, dict[str, float | None]] = {
    "virtual": {"poll_interval_s": 300.0, "backoff_scale": 1.0, "lease_s": 60.0,
                "input_min_s": 120.0, "input_max_s": 600.0, "inference_s": 0.0,
                "inference_min_s": 600.0, "inference_max_s": 2400.0},
    "real": {"poll_interval_s": 5.0, "backoff_scale": 0.01, "lease_s": 20.0,
             "input_min_s": 2.0, "input_max_s": 20.0, "inference_s": 10.0,
             "inference_min_s": None, "inference_max_s": None},
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clock", choices=("virtual", "real"), default="virtual",
                   help="virtual: production durations on a virtual clock, one process "
                   "(default); real: compressed real time, worker processes")
    p.add_argument("--miners", type=int, default=256)
    p.add_argument("--inference-s", type=float, help="real clock: D, every miner's inference")
    p.add_argument("--inference-min-s", type=float, help="virtual clock: D ~ U(min, max) per miner")
    p.add_argument("--inference-max-s", type=float)
    p.add_argument("--input-min-s", type=float)
    p.add_argument("--input-max-s", type=float)
    p.add_argument("--hash-wait-s", type=float, default=600.0,
                   help="virtual clock, barrier flow: the old validator's fixed input-hash wait")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--poll-interval-s", type=float)
    p.add_argument("--backoff-scale", type=float)
    p.add_argument("--lease-s", type=float)
    p.add_argument("--workers", type=int, default=64, help="handlers per worker process")
    p.add_argument("--worker-processes", type=int, default=1, help="real clock only")
    p.add_argument("--scoring-processes", type=int, default=2,
                   help="per worker process; 0 scores inside the worker's event loop")
    p.add_argument("--flows", nargs="+", choices=VIRTUAL_FLOWS, default=None,
                   help="default: streaming barrier ('ready' = every miner ready when asked, "
                   "virtual clock only)")
    p.add_argument("--timeout-s", type=float, default=240.0, help="real clock: per flow, after run.create")
    p.add_argument("--settle-limit-s", type=float, default=1800.0,
                   help="virtual clock: real seconds one moment may take")
    p.add_argument("--server-url", default=DEFAULT_SERVER_URL)
    args = p.parse_args(argv)
    for name, value in MODE_DEFAULTS[args.clock].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.flows is None:
        args.flows = list(FLOWS)
    if args.clock == "real" and "ready" in args.flows:
        p.error("the 'ready' flow needs --clock virtual")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="gaia-bench-pipeline-") as tmp:
        root = Path(tmp)
        archive = build_archive(root / "archive", grid_deg=5.0, start=ARCHIVE_START, days=3,
                                seed=11, cycle_days=0.5)
        wallets = root / "wallets"
        validator = make_wallet(wallets, "validator")
        miners = [make_wallet(wallets, f"miner-{i:03d}") for i in range(args.miners)]
        ports = free_ports(args.miners)
        write_neurons(root / "neurons.json", [neuron(validator, 0, None)]
                      + [neuron(w, i + 1, p) for i, (w, p) in enumerate(zip(miners, ports, strict=True))])
        with ArchiveServer(archive.root) as server:
            args.archive_url = server.url
            bench = Bench(args, root, archive, args.server_url, validator, miners, ports)
            results = []
            for flow in args.flows:
                print(f"running the {flow} flow ({args.clock} clock) ...", flush=True)
                began = time.monotonic()
                run = run_virtual_flow if args.clock == "virtual" else run_flow
                results.append(run(bench, flow))
                scale = 60.0 if args.clock == "virtual" else 1.0
                got = {k: round(v / scale, 1) for k, v in results[-1].seconds.items()
                       if k.endswith("_day1")}
                print(f"  took {time.monotonic() - began:.0f} s; day-1 "
                      f"({'min' if scale > 1 else 's'}): {got}", flush=True)
        report(bench, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

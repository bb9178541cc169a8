"""Benchmark: time to the first and the last day-1 score of a run, N simulated miners.

The validator side is the real one: a fresh PostgreSQL database migrated to head, the local
archive (5 degree) on a loopback ``ArchiveServer``, a static chain file listing the miners
with their ports, and ``python -m gaia.validator worker`` processes; the run is created by
enqueueing ``weather.run.create`` as the scheduler would. The miners are
``benchmarks/sim_miner.py`` (one process, one port and one real wallet each; they sleep
instead of forecasting and serve a real signed store, see its docstring).

Each flow runs with the same miners and seed:

* ``streaming`` (this design): a miner starts inference the moment it is asked;
* ``barrier`` (the old flow, as a model): no inference starts before every miner has been
  asked and has finished its input phase.

Times are from the enqueue of ``weather.run.create`` (its ``created_at``) to the first and
last ``forecast_ready`` (``manifest_fetched_at``) and to the first and last finished
``weather.day1_score`` job. The archive's ERA5 ends before the run's +240 h, so every
``weather.era5_score`` waits for truth (as it would in a live run) and the benchmark stops
after day 1.

    .venv/bin/python benchmarks/pipeline.py                       # 256 miners, both flows
    .venv/bin/python benchmarks/pipeline.py --miners 64 --flows streaming
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

import asyncpg
import bittensor as bt
from sim_miner import SimConfig, SimMinerSpec, input_times  # benchmarks/ is the script's dir
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from gaia.chain.client import Neuron
from gaia.chain.static import write_neurons
from gaia.database import migrations
from gaia.jobs.queue import JobQueue
from gaia.jobs.retry_config import WeatherJob
from gaia.tasks.defined_tasks.weather.data.archive import ArchiveInfo, build_archive
from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.pipeline.payloads import RunCreatePayload
from gaia.tasks.defined_tasks.weather.pipeline.workers import all_policies
from gaia.tasks.defined_tasks.weather.states import RunMode

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


@dataclass(frozen=True)
class FlowResult:
    flow: str
    seconds: dict[str, float]  # milestone -> seconds after the run.create enqueue
    counts: dict[str, int]  # response status -> miners
    failures: list[str]
    cpu_s: dict[str, float]  # process -> CPU seconds used
    load: tuple[float, float]  # 1-min load average before and after
    deadlocks: int  # DeadlockDetectedError tracebacks in the worker logs


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
        "--poll-interval-s", str(a.poll_interval_s), "--backoff-scale", "0.01",
        "--lease-s", str(a.lease_s), "--scoring-processes", str(a.scoring_processes), "--workers", str(a.workers),
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


ROWS = (
    ("gfs_ready", "GFS inputs + day-1 reference downloaded (seed done)"),
    ("first_asked", "first miner asked (inference_started_at)"),
    ("last_asked", "last miner asked"),
    ("sim_first_ready", "first forecast ready at the miner"),
    ("first_ready", "first forecast_ready committed"),
    ("first_day1", "first day-1 score"),
    ("sim_last_ready", "last forecast ready at the miner"),
    ("last_ready", "last forecast_ready committed"),
    ("last_day1", "last day-1 score"),
)


def report(bench: Bench, results: list[FlowResult]) -> None:
    a = bench.args
    inputs = input_times(len(bench.miners), a.input_min_s, a.input_max_s, a.seed)
    print(f"\nN = {len(bench.miners)} miners, D = {a.inference_s:g} s, I ~ U({a.input_min_s:g}, "
          f"{a.input_max_s:g}) s seed {a.seed} (min {min(inputs):.1f}, median "
          f"{statistics.median(inputs):.1f}, max {max(inputs):.1f}); {a.worker_processes} worker "
          f"process(es) x {a.workers} handlers, {a.scoring_processes} scoring processes each, poll every {a.poll_interval_s:g} s, "
          f"{os.cpu_count()} CPUs")
    print(f"\n| milestone (s after run.create) | {' | '.join(r.flow for r in results)} |")
    print(f"|---|{'---|' * len(results)}")
    for key, label in ROWS:
        cells = [f"{r.seconds[key]:.1f}" if key in r.seconds else "-" for r in results]
        print(f"| {label} | {' | '.join(cells)} |")
    for r in results:
        print(f"\n{r.flow}: statuses {r.counts}; CPU s (worker without its scoring processes) "
              f"{({k: round(v, 1) for k, v in r.cpu_s.items()})}; "
              f"load {r.load[0]:.2f} -> {r.load[1]:.2f}; deadlocks retried {r.deadlocks}")
        for failure in r.failures:
            print(f"  failed: {failure}")
    by_flow = {r.flow: r for r in results}
    if set(FLOWS) <= set(by_flow) and all("first_day1" in by_flow[f].seconds for f in FLOWS):
        first = [by_flow[f].seconds["first_day1"] for f in FLOWS]
        last = [by_flow[f].seconds.get("last_day1", float("nan")) for f in FLOWS]
        print(f"\ntime to first day-1 score: streaming / barrier = {first[0]:.1f} / {first[1]:.1f}"
              f" = {first[0] / first[1]:.0%} (plan: <= 50 %, aim 25 %)")
        print(f"time to last day-1 score:  streaming / barrier = {last[0]:.1f} / {last[1]:.1f}"
              f" = {last[0] / last[1]:.0%}")
    for r in results:
        miner_time = max(inputs) + a.inference_s
        if "last_ready" in r.seconds and "first_asked" in r.seconds:
            took = r.seconds["last_ready"] - r.seconds["first_asked"]
            print(f"{r.flow}: first ask -> last forecast_ready {took:.1f} s; slowest miner "
                  f"I+D = {miner_time:.1f} s; target 1.1 x {miner_time:.1f} + 5 = "
                  f"{1.1 * miner_time + 5:.1f} s; sequential: {len(bench.miners)} x D = "
                  f"{len(bench.miners) * a.inference_s:.0f} s")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--miners", type=int, default=256)
    p.add_argument("--inference-s", type=float, default=10.0, help="D: every miner's inference")
    p.add_argument("--input-min-s", type=float, default=2.0)
    p.add_argument("--input-max-s", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--poll-interval-s", type=float, default=5.0)
    p.add_argument("--lease-s", type=float, default=20.0)
    p.add_argument("--workers", type=int, default=64, help="handlers per worker process")
    p.add_argument("--worker-processes", type=int, default=1)
    p.add_argument("--scoring-processes", type=int, default=2,
                   help="per worker process; 0 scores inside the worker's event loop")
    p.add_argument("--flows", nargs="+", choices=FLOWS, default=list(FLOWS))
    p.add_argument("--timeout-s", type=float, default=240.0, help="per flow, after run.create")
    p.add_argument("--server-url", default=DEFAULT_SERVER_URL)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
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
                print(f"running the {flow} flow ...", flush=True)
                results.append(run_flow(bench, flow))
        report(bench, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The validator's unsigned ``/metrics`` and ``/healthz`` listener on loopback, over a real
worker and the real PostgreSQL queue: the series move when jobs run, the database's series
(jobs, runs, failures by step, queue lag) follow the tables, and health turns 503 when the
database is gone or when due jobs sit unclaimed past the threshold (injected clock). The
last test runs ``python -m gaia.validator worker --metrics.port N`` as an operator does."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from gaia.chain.static import write_neurons
from gaia.clock import VirtualClock
from gaia.database.validator_schema import WeatherForecastRun, WeatherMinerResponse
from gaia.jobs import (
    Invalid,
    JobContext,
    JobQueue,
    JobRegistry,
    Retry,
    RetryPolicy,
    Worker,
    WorkerOptions,
)
from gaia.jobs.queue import asyncpg_dsn
from gaia.tasks.defined_tasks.weather.pipeline.workers import all_policies
from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunStatus
from gaia.validator import periodic
from gaia.validator.listener import Listener
from gaia.validator.metrics import ValidatorMetrics
from gaia.validator.probe import ValidatorProbe
from tests.fixtures.metrics import Samples, healthz, scrape, value
from tests.fixtures.miner import REPO_ROOT, free_port, make_wallet

START = datetime(2025, 3, 1, 18, tzinfo=UTC)
THRESHOLD_S = 600.0
POLICY = RetryPolicy(2, (0.0,), timeout_s=30, max_timeout_s=30)
SCORING = "test.score"


async def succeed(_payload: dict, _ctx: JobContext) -> None:
    return None


async def retry(_payload: dict, _ctx: JobContext) -> None:
    raise Retry("the miner did not answer")


async def invalid(_payload: dict, _ctx: JobContext) -> None:
    raise Invalid("the forecast is not on the grid")


def registry() -> JobRegistry:
    jobs = JobRegistry()
    for job_type, handler in (("test.ok", succeed), ("test.retry", retry),
                              ("test.invalid", invalid), (SCORING, succeed)):
        jobs.register(job_type, handler, policy=POLICY)
    return jobs


def queue(clock: VirtualClock) -> JobQueue:
    return JobQueue({t: POLICY for t in ("test.ok", "test.retry", "test.invalid", SCORING)},
                    clock)








class Parts:
    """A worker, its metrics and the probe, on one virtual clock."""

    def __init__(self, database_url: str, session_factory: async_sessionmaker) -> None:
        self.clock = VirtualClock(START)
        self.metrics = ValidatorMetrics(self.clock, scoring_job_types=frozenset({SCORING}))
        self.session_factory = session_factory
        self.database_url = database_url
        self.probe = ValidatorProbe(self.metrics, session_factory, self.clock,
                                    unclaimed_after_s=THRESHOLD_S)

    def worker(self) -> Worker:
        return Worker(asyncpg_dsn(self.database_url), registry(), self.session_factory,
                      WorkerOptions(concurrency=4, idle_poll_s=0.1), clock=self.clock,
                      observer=self.metrics)

    async def enqueue(self, *job_types: str, run_at: datetime | None = None) -> None:
        jobs = queue(self.clock)
        async with self.session_factory.begin() as session:
            for job_type in job_types:
                await jobs.enqueue(session, job_type, {}, run_at=run_at)


async def test_job_series_move_when_a_worker_runs_jobs(database_url, session_factory) -> None:
    parts = Parts(database_url, session_factory)
    async with Listener("127.0.0.1", 0, parts.probe.routes()) as listener:
        url = f"http://127.0.0.1:{listener.port}"
        before = await scrape(url)
        assert value(before, "gaia_validator_database_up") == 1
        assert value(before, "gaia_validator_jobs_finished_total",
                     job_type="test.ok", result="succeeded") == 0

        await parts.enqueue("test.ok", "test.retry", "test.invalid", SCORING)
        queued = await scrape(url)
        assert value(queued, "gaia_validator_jobs", job_type="test.ok", state="queued") == 1
        await parts.worker().run(until_idle=True)
        after = await scrape(url)

    finished = {(job_type, result): value(after, "gaia_validator_jobs_finished_total",
                                          job_type=job_type, result=result)
                for job_type, result in (("test.ok", "succeeded"), ("test.retry", "retried"),
                                         ("test.retry", "failed"), ("test.invalid", "failed"),
                                         (SCORING, "succeeded"))}
    assert finished == {("test.ok", "succeeded"): 1, ("test.retry", "retried"): 1,
                        ("test.retry", "failed"): 1, ("test.invalid", "failed"): 1,
                        (SCORING, "succeeded"): 1}
    assert value(after, "gaia_validator_jobs_claimed_total", job_type="test.retry") == 2
    assert value(after, "gaia_validator_job_duration_seconds_count", job_type="test.retry") == 2
    assert value(after, "gaia_validator_scoring_seconds_count",
                 job_type=SCORING, result="succeeded") == 1
    assert value(after, "gaia_validator_scoring_seconds_count",
                 job_type="test.ok", result="succeeded") == 0
    assert value(after, "gaia_validator_jobs", job_type="test.ok", state="succeeded") == 1
    assert value(after, "gaia_validator_jobs", job_type="test.retry", state="failed") == 1
    assert value(after, "gaia_validator_jobs", job_type="test.ok", state="queued") == 0
    assert value(after, "gaia_validator_queue_lag_seconds") == 0


async def test_runs_and_failures_by_step_follow_the_tables(database_url, session_factory) -> None:
    parts = Parts(database_url, session_factory)
    async with session_factory.begin() as session:
        run = WeatherForecastRun(gfs_init_time=START - timedelta(hours=6),
                                 status=RunStatus.QUERYING_MINERS, commit_deadline=START,
                                 grid_deg=GRID_DEG)
        session.add(run)
        await session.flush()
        for hotkey, step, reason in (
            ("5a", "poll_miner", "late: no committed forecast by the deadline 2025-03-01T21:30"),
            ("5b", "poll_miner", "late: the poll at the deadline 2025-03-01T21:30 failed (x)"),
            ("5c", "query_miner", "miner offline (connection refused by 10.0.0.7)"),
        ):
            session.add(WeatherMinerResponse(run_id=run.id, miner_hotkey=hotkey,
                                             status=MinerResponseStatus.FAILED,
                                             failed_step=step, failure_reason=reason))
        session.add(WeatherMinerResponse(run_id=run.id, miner_hotkey="5d",
                                         status=MinerResponseStatus.INFERENCE_RUNNING))
    async with Listener("127.0.0.1", 0, parts.probe.routes()) as listener:
        samples = await scrape(f"http://127.0.0.1:{listener.port}")
    assert value(samples, "gaia_validator_runs", status="querying_miners") == 1
    assert value(samples, "gaia_validator_response_failures", step="poll_miner", reason="late") == 2
    assert value(samples, "gaia_validator_response_failures",
                 step="query_miner", reason="miner offline") == 1
    failures = [k for k in samples if k[0] == "gaia_validator_response_failures"]
    assert len(failures) == 2, failures


async def test_healthz_is_503_while_due_jobs_sit_unclaimed_past_the_threshold(
    database_url, session_factory,
) -> None:
    parts = Parts(database_url, session_factory)
    async with Listener("127.0.0.1", 0, parts.probe.routes()) as listener:
        url = f"http://127.0.0.1:{listener.port}"
        await parts.enqueue("test.ok")  # due now; no worker runs yet
        parts.clock.advance_to(START + timedelta(seconds=THRESHOLD_S - 1))
        waiting = await healthz(url)
        assert waiting.status_code == 200, waiting.text

        parts.clock.advance_to(START + timedelta(seconds=THRESHOLD_S + 30))
        stuck = await healthz(url)
        assert stuck.status_code == 503
        assert stuck.json()["status"] == "unhealthy"
        assert stuck.json()["queue_lag_s"] == THRESHOLD_S + 30
        assert "claimed nothing" in stuck.json()["problems"][0]
        assert value(await scrape(url), "gaia_validator_queue_lag_seconds") == THRESHOLD_S + 30

        await parts.worker().run(until_idle=True)  # a worker claims it: healthy again
        recovered = await healthz(url)
        assert recovered.status_code == 200, recovered.text
        assert recovered.json()["queue_lag_s"] == 0


async def test_a_backlog_being_worked_through_is_healthy(database_url, session_factory) -> None:
    """An old due job does not make a worker that keeps claiming unhealthy."""
    parts = Parts(database_url, session_factory)
    await parts.enqueue("test.ok", run_at=START - timedelta(seconds=THRESHOLD_S * 3))
    parts.metrics.job_claimed("test.ok")  # this worker claimed a job just now
    async with Listener("127.0.0.1", 0, parts.probe.routes()) as listener:
        response = await healthz(f"http://127.0.0.1:{listener.port}")
    assert response.status_code == 200, response.text
    assert response.json()["queue_lag_s"] == THRESHOLD_S * 3


async def test_healthz_is_503_when_the_database_is_unreachable() -> None:
    closed = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gaia"
    engine = create_async_engine(closed)
    parts = Parts(closed, async_sessionmaker(engine, expire_on_commit=False))
    try:
        async with Listener("127.0.0.1", 0, parts.probe.routes()) as listener:
            url = f"http://127.0.0.1:{listener.port}"
            response = await healthz(url)
            samples = await scrape(url)
    finally:
        await engine.dispose()
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    assert response.json()["problems"] == ["database unreachable"]
    assert value(samples, "gaia_validator_database_up") == 0
    assert not [k for k in samples if k[0] == "gaia_validator_jobs"]


async def test_listener_answers_404_and_405_and_ignores_a_stalled_client(
    database_url, session_factory,
) -> None:
    parts = Parts(database_url, session_factory)
    async with Listener("127.0.0.1", 0, parts.probe.routes()) as listener:
        url = f"http://127.0.0.1:{listener.port}"
        async with httpx.AsyncClient() as plain:
            assert (await plain.get(url + "/weather/jobs/1")).status_code == 404
            assert (await plain.post(url + "/metrics", content=b"x")).status_code == 405
        _reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"GET /metrics HTTP/1.1\r\n")  # never finishes its request head
        assert (await healthz(url)).status_code == 200  # others are answered meanwhile
        writer.close()


# --- the real process ---------------------------------------------------------------------


def _validator_args(root: Path, database_url: str, port: int) -> list[str]:
    wallet = make_wallet(root / "wallets", "validator")
    chain = root / "neurons.json"
    write_neurons(chain, [])
    return ["worker", "--database-url", database_url, "--wallet.name", "validator",
            "--wallet.path", str(root / "wallets"), "--wallet.hotkey", wallet.hotkey_str,
            "--chain", "static", "--chain.static-path", str(chain),
            "--data.cache-dir", str(root / "cache"), "--scoring-processes", "0",
            "--metrics.port", str(port)]




def _start_validator(root: Path, database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    with (root / "validator.log").open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gaia.validator", *_validator_args(root, database_url, port)],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _wait_for(url: str, check: Callable[[Samples], bool], timeout_s: float = 60.0,
                    ) -> Samples:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            samples = await scrape(url)
            if check(samples):
                return samples
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the validator's metrics never showed it"
        await asyncio.sleep(0.2)


async def test_a_validator_worker_process_serves_metrics_and_health(
    tmp_path: Path, database_url: str, session_factory,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "validator.log"
    process = _start_validator(tmp_path, database_url, port)
    try:
        await _wait_for(url, lambda s: value(s, "gaia_validator_database_up") == 1)
        assert (await healthz(url)).json()["status"] == "ok"
        async with session_factory.begin() as session:
            await JobQueue(all_policies()).enqueue(session, periodic.METAGRAPH_SYNC,
                                                   {"slot": "test"})
        samples = await _wait_for(url, lambda s: value(
            s, "gaia_validator_jobs_finished_total",
            job_type=periodic.METAGRAPH_SYNC, result="succeeded") == 1)
        assert value(samples, "gaia_validator_jobs",
                     job_type=periodic.METAGRAPH_SYNC, state="succeeded") == 1
        assert value(samples, "gaia_validator_job_duration_seconds_count",
                     job_type=periodic.METAGRAPH_SYNC) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert "metrics and health on http://127.0.0.1" in log.read_text()

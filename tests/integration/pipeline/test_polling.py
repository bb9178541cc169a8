"""Polling a miner until the commit deadline, fast commits, growing timeouts, refusals.

The miner is a small Starlette app on loopback that checks the validator's real btauth
signatures and answers initiate-fetch and job status as each test scripts it (statuses,
HTTP codes, hangs). Steps run in-process on a real database with a virtual clock, except
the timeout test, which runs the real worker on real time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from bittensor import http_auth
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gaia.chain.client import Neuron
from gaia.database.validator_schema import WeatherMinerResponse
from gaia.jobs import JobRegistry, Worker, WorkerOptions, asyncpg_dsn
from gaia.jobs.outcomes import INVALID_PREFIX, Invalid, JobOutcome, NotReady, Retry, TimedOut
from gaia.jobs.policy import resolve
from gaia.jobs.schema import JobStatus, ValidatorJob
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.pipeline.context import PipelineContext
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import ForecastRef
from gaia.tasks.defined_tasks.weather.pipeline.job_types import RETRY_CONFIG, WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.miner_client import MinerClient, MinerTimedOut
from gaia.tasks.defined_tasks.weather.pipeline.payloads import ResponsePayload
from gaia.tasks.defined_tasks.weather.pipeline.responses import give_up_as
from gaia.tasks.defined_tasks.weather.pipeline.steps.poll_miner_step import (
    LATE_POLL_GRACE,
    MIN_POLL_GAP_S,
    next_poll_at,
    poll_miner,
)
from gaia.tasks.defined_tasks.weather.pipeline.steps.query_miner_step import query_miner
from gaia.tasks.defined_tasks.weather.protocol import (
    INITIATE_FETCH_PATH,
    JobProgress,
    job_id_for,
)
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus as S
from gaia.tasks.defined_tasks.weather.states import RunMode
from gaia.tasks.defined_tasks.weather.variables import FORECAST_LEAD_HOURS
from gaia.validator.database import validator_database_manager as db
from tests.fixtures.forecast_store import new_keypair
from tests.fixtures.pipeline import job_context, pipeline_context

INIT = datetime(2026, 1, 1, 12, tzinfo=UTC)
QUERIED = datetime(2026, 1, 1, 18, tzinfo=UTC)
DEADLINE = INIT + timedelta(hours=9, minutes=30)  # RunTiming().commit_deadline(INIT)
LEADS = len(FORECAST_LEAD_HOURS)
POLICY = RETRY_CONFIG[WeatherJob.POLL_MINER]
HASH = "ab" * 32
RUN_GRID_DEG = 5.0  # not the protocol's: the commit must check the run's own grid


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


StatusAnswer = Callable[[], tuple[int, dict[str, Any]]]


@dataclasses.dataclass
class ScriptedMiner:
    """A protocol-speaking miner whose answers the test chooses."""

    hotkey: str
    initiate: tuple[int, str] = (200, "inference_running")  # HTTP code, job status
    status: StatusAnswer | None = None
    hang_s: float = 0.0
    calls: list[str] = dataclasses.field(default_factory=list)
    base_url: str = ""

    def job_id(self) -> str:
        return job_id_for(self.hotkey, INIT)

    async def _verify(self, request: Request) -> Response | None:
        target = request.scope["raw_path"].decode()
        try:
            http_auth.verify(request.headers, await request.body(), method=request.method,
                             path=target, self_hotkey_ss58=self.hotkey, nonce_store=self._nonces)
        except http_auth.AuthError as error:
            return JSONResponse({"error": "unauthenticated", "message": str(error)}, 401)
        return None

    async def initiate_fetch(self, request: Request) -> Response:
        self.calls.append("initiate")
        if (refused := await self._verify(request)) is not None:
            return refused
        code, status = self.initiate
        if code != 200:
            return JSONResponse({"error": "refused", "message": f"scripted {code}"}, code)
        return JSONResponse({"job_id": self.job_id(), "status": status})

    async def job_status(self, request: Request) -> Response:
        self.calls.append("status")
        if (refused := await self._verify(request)) is not None:
            return refused
        await asyncio.sleep(self.hang_s)
        assert self.status is not None
        code, body = self.status()
        return JSONResponse(body, code)

    def app(self) -> Starlette:
        self._nonces = http_auth.InMemoryNonceStore()
        return Starlette(routes=[
            Route(INITIATE_FETCH_PATH, self.initiate_fetch, methods=["POST"]),
            Route("/weather/jobs/{job_id}", self.job_status, methods=["GET"]),
        ])


def running(job_id: str, done: int) -> tuple[int, dict[str, Any]]:
    return 200, {"job_id": job_id, "gfs_init_time": "2026-01-01T12:00:00Z",
                 "status": "inference_running",
                 "progress": {"leads_done": done, "leads_total": LEADS}}


def ready(job_id: str) -> tuple[int, dict[str, Any]]:
    return 200, {"job_id": job_id, "gfs_init_time": "2026-01-01T12:00:00Z",
                 "status": "forecast_ready", "progress": {"leads_done": LEADS, "leads_total": LEADS},
                 "manifest_hash": HASH, "manifest_url": f"/weather/forecasts/{job_id}/manifest.json"}


@contextmanager
def scripted_miner() -> Iterator[ScriptedMiner]:
    miner = ScriptedMiner(hotkey=new_keypair().ss58_address)
    config = uvicorn.Config(miner.app(), host="127.0.0.1", port=0, log_level="warning",
                            lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "scripted miner did not start"
        time.sleep(0.01)
    miner.base_url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield miner
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class CommitRecorder:
    """The forecast service's commit: records what it was asked to commit (the manifest
    checks themselves are tested with the verified reader)."""

    def __init__(self) -> None:
        self.committed: list[tuple[ForecastRef, str, Grid]] = []

    async def commit_manifest(self, forecast: ForecastRef, announced_hash: str, grid: Grid) -> str:
        self.committed.append((forecast, announced_hash, grid))
        return announced_hash


@dataclasses.dataclass
class Setup:
    ctx: PipelineContext
    payload: ResponsePayload
    clock: Clock
    commits: CommitRecorder


async def _setup(
    factory: async_sessionmaker, tmp_path: Path, miner: ScriptedMiner, status: S,
    *, clock: Clock | None = None, deadline: datetime = DEADLINE,
) -> Setup:
    clock = clock or Clock(QUERIED)
    async with factory.begin() as session:
        run_id, _ = await db.create_run(session, INIT, RunMode.LIVE, deadline,
                                        grid_deg=RUN_GRID_DEG)
        port = int(miner.base_url.rsplit(":", 1)[1])
        await db.sync_miners(session, [Neuron(1, miner.hotkey, miner.hotkey, "127.0.0.1", port,
                                              10.0, False)])
        response_id = await db.insert_response(session, run_id, miner.hotkey, 1)
        if status is not S.CREATED:
            await session.execute(update(WeatherMinerResponse)
                                  .where(WeatherMinerResponse.id == response_id)
                                  .values(status=status, miner_job_id=miner.job_id(),
                                          inference_started_at=QUERIED))
    commits = CommitRecorder()
    ctx = dataclasses.replace(pipeline_context(factory, tmp_path, clock=clock), forecasts=commits)
    payload = ResponsePayload(run_id=run_id, response_id=response_id, miner_hotkey=miner.hotkey)
    return Setup(ctx, payload, clock, commits)


async def _poll(setup: Setup, attempt: int = 1) -> JobOutcome | None:
    job = job_context(setup.ctx.session_factory, 1, WeatherJob.POLL_MINER, attempt, POLICY.timeout_s)
    try:
        await poll_miner(setup.ctx, setup.payload, job)
    except JobOutcome as outcome:
        return outcome
    return None


async def _poll_until_done(setup: Setup) -> tuple[list[NotReady], JobOutcome | None]:
    """Poll as the queue would: each NotReady resolves (by the real policy) to a due time,
    the virtual clock jumps there. Returns the waits and the final outcome."""
    waits: list[NotReady] = []
    attempts = 1
    while True:
        outcome = await _poll(setup, attempts)
        if not isinstance(outcome, NotReady):
            return waits, outcome
        waits.append(outcome)
        resolution = resolve(outcome, attempts=attempts, max_attempts=POLICY.max_attempts,
                             timeout_s=POLICY.timeout_s, policy=POLICY)
        assert resolution.status is JobStatus.QUEUED and resolution.run_at == outcome.until
        attempts = resolution.attempts + 1  # the next claim counts one more
        setup.clock.now = outcome.until
        assert len(waits) < 1000


async def _response(factory: async_sessionmaker, response_id: int) -> WeatherMinerResponse:
    async with factory() as session:
        return await session.get_one(WeatherMinerResponse, response_id)


async def _jobs(factory: async_sessionmaker, job_type: str) -> list[ValidatorJob]:
    async with factory() as session:
        return list(await session.scalars(select(ValidatorJob).where(ValidatorJob.job_type == job_type)))


# --- the next-poll rule ------------------------------------------------------------------


def _progress(done: int) -> JobProgress:
    return JobProgress(leads_done=done, leads_total=LEADS)


def test_next_poll_extrapolates_progress_between_a_minimum_gap_and_the_interval() -> None:
    now = QUERIED + timedelta(minutes=30)

    def after(done: int, interval_s: float = 300.0, deadline: datetime = DEADLINE) -> float:
        at = next_poll_at(now, deadline, interval_s=interval_s, started_at=QUERIED,
                          progress=_progress(done))
        return (at - now).total_seconds()

    assert after(0) == 300.0  # no progress yet: the interval
    assert after(10) == 300.0  # 1/4 done in 30 min: 90 min left, the interval is sooner
    assert after(38) == pytest.approx(30 * 60 * 2 / 38)  # ~95 s left: poll then
    assert after(LEADS) == MIN_POLL_GAP_S  # all leads done, manifest being written
    assert after(39, interval_s=0.5) == 0.5  # the interval also caps the minimum gap
    fast = next_poll_at(QUERIED + timedelta(minutes=5), DEADLINE, interval_s=300.0,
                        started_at=QUERIED, progress=_progress(39))
    assert fast == QUERIED + timedelta(minutes=5, seconds=MIN_POLL_GAP_S)  # ~8 s left: the gap
    near = now + timedelta(seconds=20)
    assert after(0, deadline=near) == 20.0  # never after the deadline
    no_start = next_poll_at(now, DEADLINE, interval_s=300.0, started_at=None,
                            progress=_progress(20))
    assert no_start == now + timedelta(seconds=300)


# --- polling to the deadline -------------------------------------------------------------


async def test_a_miner_running_for_two_hours_is_polled_without_using_attempts_then_committed(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    clock = Clock(QUERIED)
    takes = timedelta(hours=2)
    with scripted_miner() as miner:
        def status() -> tuple[int, dict[str, Any]]:
            elapsed = clock.now - QUERIED
            if elapsed >= takes:
                return ready(miner.job_id())
            return running(miner.job_id(), min(LEADS - 1, int(LEADS * (elapsed / takes))))

        miner.status = status
        setup = await _setup(session_factory, tmp_path, miner, S.INFERENCE_RUNNING, clock=clock)
        waits, final = await _poll_until_done(setup)
    assert final is None
    assert len(waits) > POLICY.max_attempts  # far more polls than attempts
    assert waits[-1].until >= QUERIED + takes > QUERIED + timedelta(minutes=50)
    assert all(w.until <= DEADLINE for w in waits)
    gaps = [(b.until - a.until).total_seconds() for a, b in zip(waits, waits[1:], strict=False)]
    assert max(gaps) == 300.0 and min(gaps) >= MIN_POLL_GAP_S
    response = await _response(session_factory, setup.payload.response_id)
    assert (response.status, response.manifest_hash) == (S.FORECAST_READY, HASH)
    assert response.manifest_fetched_at == QUERIED + takes
    assert [c[1] for c in setup.commits.committed] == [HASH]
    assert setup.commits.committed[0][2] == Grid.regular(RUN_GRID_DEG)
    assert len(await _jobs(session_factory, WeatherJob.DAY1_SCORE)) == 1


async def test_a_miner_still_running_at_the_deadline_is_failed_late_and_never_polled_after(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    with scripted_miner() as miner:
        miner.status = lambda: running(miner.job_id(), 10)
        setup = await _setup(session_factory, tmp_path, miner, S.INFERENCE_RUNNING)
        waits, final = await _poll_until_done(setup)
    assert all(w.until <= DEADLINE for w in waits)
    assert waits[-1].until == DEADLINE  # the last poll is at the deadline itself
    assert isinstance(final, Invalid) and final.reason.startswith("late")
    assert setup.commits.committed == []
    async with session_factory.begin() as session:  # what the worker's give-up does with it
        await give_up_as("poll_miner", "no forecast in time")(
            session, setup.payload, INVALID_PREFIX + final.reason)
    response = await _response(session_factory, setup.payload.response_id)
    assert (response.status, response.failed_step) == (S.FAILED, "poll_miner")
    assert response.failure_reason.startswith("late")


async def test_a_forecast_ready_only_after_the_deadline_is_late(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    clock = Clock(QUERIED)
    with scripted_miner() as miner:
        miner.status = lambda: (ready(miner.job_id()) if clock.now > DEADLINE
                                else running(miner.job_id(), 39))
        setup = await _setup(session_factory, tmp_path, miner, S.INFERENCE_RUNNING, clock=clock)
        _, final = await _poll_until_done(setup)
        assert isinstance(final, Invalid) and final.reason.startswith("late")
        # a poll that asks long after the deadline (workers were down) commits nothing either
        clock.now = DEADLINE + LATE_POLL_GRACE + timedelta(seconds=1)
        late = await _poll(setup)
        assert isinstance(late, Invalid) and late.reason.startswith("late")
        # ... while the poll due at the deadline that a busy worker starts a little late does
        clock.now = DEADLINE + LATE_POLL_GRACE / 2
        assert await _poll(setup) is None
    assert [c[1] for c in setup.commits.committed] == [HASH]


async def test_a_poll_of_a_fetch_initiated_response_moves_it_on(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    with scripted_miner() as miner:
        miner.status = lambda: running(miner.job_id(), 0)
        setup = await _setup(session_factory, tmp_path, miner, S.FETCH_INITIATED)
        outcome = await _poll(setup)
    assert isinstance(outcome, NotReady)
    assert outcome.until == QUERIED + timedelta(seconds=300)
    response = await _response(session_factory, setup.payload.response_id)
    assert (response.status, response.inference_started_at) == (S.INFERENCE_RUNNING, QUERIED)


# --- fast commit ---------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "after"), [
    ("forecast_ready", timedelta(0)),  # already computed for another validator: poll at once
    ("inference_running", timedelta(seconds=300)),
])
async def test_the_first_poll_is_at_once_for_a_ready_forecast(
    session_factory: async_sessionmaker, tmp_path: Path, answer: str, after: timedelta,
) -> None:
    with scripted_miner() as miner:
        miner.initiate = (200, answer)
        setup = await _setup(session_factory, tmp_path, miner, S.CREATED)
        job = job_context(session_factory, 1, WeatherJob.QUERY_MINER)
        await query_miner(setup.ctx, setup.payload, job)
    [poll] = await _jobs(session_factory, WeatherJob.POLL_MINER)
    assert poll.run_at == QUERIED + after
    response = await _response(session_factory, setup.payload.response_id)
    assert (response.status, response.miner_job_id) == (S.INFERENCE_RUNNING, miner.job_id())


async def test_the_first_poll_is_never_after_the_deadline(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    deadline = QUERIED + timedelta(seconds=100)
    with scripted_miner() as miner:
        setup = await _setup(session_factory, tmp_path, miner, S.CREATED, deadline=deadline)
        await query_miner(setup.ctx, setup.payload,
                          job_context(session_factory, 1, WeatherJob.QUERY_MINER))
    [poll] = await _jobs(session_factory, WeatherJob.POLL_MINER)
    assert poll.run_at == deadline


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [401, 403, 429])
async def test_auth_and_rate_refusals_are_retried_with_the_reason(
    session_factory: async_sessionmaker, tmp_path: Path, code: int,
) -> None:
    with scripted_miner() as miner:
        miner.initiate = (code, "")
        miner.status = lambda: (code, {"error": "no_permit", "message": "validator not known yet"})
        setup = await _setup(session_factory, tmp_path, miner, S.CREATED)
        query = job_context(session_factory, 1, WeatherJob.QUERY_MINER)
        with pytest.raises(Retry) as queried:
            await query_miner(setup.ctx, setup.payload, query)
        async with session_factory.begin() as session:
            await session.execute(update(WeatherMinerResponse).values(
                status=S.INFERENCE_RUNNING, miner_job_id=miner.job_id()))
        polled = await _poll(setup)
    assert type(queried.value) is Retry and f"HTTP {code}" in queried.value.reason
    assert type(polled) is Retry
    assert f"HTTP {code}" in polled.reason and "validator not known yet" in polled.reason
    resolution = resolve(polled, attempts=1, max_attempts=10, timeout_s=30, policy=POLICY)
    assert (resolution.status, resolution.delay_s, resolution.attempts) == (JobStatus.QUEUED, 300, 1)
    assert f"HTTP {code}" in (resolution.error or "")
    assert (await _response(session_factory, setup.payload.response_id)).status is S.INFERENCE_RUNNING


@pytest.mark.parametrize("code", [404, 422])
async def test_other_refusals_stay_invalid(
    session_factory: async_sessionmaker, tmp_path: Path, code: int,
) -> None:
    with scripted_miner() as miner:
        miner.initiate = (code, "")
        miner.status = lambda: (code, {"error": "unknown_job", "message": "no such job"})
        setup = await _setup(session_factory, tmp_path, miner, S.CREATED)
        with pytest.raises(Invalid, match=f"HTTP {code}"):
            await query_miner(setup.ctx, setup.payload,
                              job_context(session_factory, 1, WeatherJob.QUERY_MINER))
        async with session_factory.begin() as session:
            await session.execute(update(WeatherMinerResponse).values(
                status=S.INFERENCE_RUNNING, miner_job_id=miner.job_id()))
        polled = await _poll(setup)
    assert isinstance(polled, Invalid) and f"HTTP {code}" in polled.reason


async def test_a_failed_poll_is_retried_no_later_than_the_deadline(
    session_factory: async_sessionmaker, tmp_path: Path,
) -> None:
    with scripted_miner() as miner:
        miner.status = lambda: (503, {"error": "busy", "message": "later"})
        setup = await _setup(session_factory, tmp_path, miner, S.INFERENCE_RUNNING)
        early = await _poll(setup)
        setup.clock.now = DEADLINE - timedelta(seconds=100)
        near = await _poll(setup)
        setup.clock.now = DEADLINE
        at = await _poll(setup)
    assert type(early) is Retry and early.delay is None  # the policy's 300 s fits
    assert type(near) is Retry and near.delay == 100.0
    assert isinstance(at, Invalid) and at.reason.startswith("late") and "HTTP 503" in at.reason


# --- timeouts ------------------------------------------------------------------------------


async def test_a_call_timeout_is_the_callers_not_the_clients_default() -> None:
    with scripted_miner() as miner:
        miner.hang_s = 1.5
        miner.status = lambda: running(miner.job_id(), 0)
        async with SignedClient(new_keypair(), timeout=0.1) as signed:
            started = time.monotonic()
            with pytest.raises(MinerTimedOut, match="no answer within 0.6 s"):
                await MinerClient(signed).job_status(miner.base_url, miner.hotkey, miner.job_id(),
                                                     timeout_s=0.6)
            took = time.monotonic() - started
    assert 0.6 <= took < 1.4


async def test_a_hanging_miner_times_out_and_the_next_attempt_waits_twice_as_long(
    session_factory: async_sessionmaker, tmp_path: Path, database_url: str,
) -> None:
    with scripted_miner() as miner:
        miner.hang_s = 5.0
        miner.status = lambda: running(miner.job_id(), 0)
        setup = await _setup(session_factory, tmp_path, miner, S.INFERENCE_RUNNING,
                             clock=Clock(datetime.now(UTC)),
                             deadline=datetime.now(UTC) + timedelta(hours=1))
        ctx = dataclasses.replace(setup.ctx, clock=lambda: datetime.now(UTC))
        registry = JobRegistry()
        registry.register(WeatherJob.POLL_MINER, lambda p, job: poll_miner(ctx, p, job),
                          policy=POLICY, payload_model=ResponsePayload)
        async with session_factory.begin() as session:
            job_id = await ctx.queue.enqueue(session, WeatherJob.POLL_MINER, setup.payload)
            await session.execute(update(ValidatorJob).where(ValidatorJob.id == job_id)
                                  .values(timeout_s=2.0))
        rows, took = [], []
        for _ in range(2):
            started = time.monotonic()
            await Worker(asyncpg_dsn(database_url), registry, session_factory,
                         WorkerOptions(concurrency=1, idle_poll_s=0.05)).run(until_idle=True)
            took.append(time.monotonic() - started)
            async with session_factory.begin() as session:
                rows.append(await session.get_one(ValidatorJob, job_id, populate_existing=True))
                await session.execute(update(ValidatorJob).where(ValidatorJob.id == job_id)
                                      .values(run_at=text("now()")))
    assert [(r.status, r.attempts, r.timeout_s) for r in rows] == [
        (JobStatus.QUEUED, 1, 4.0), (JobStatus.QUEUED, 2, 8.0)]
    assert "no answer within 1.8 s" in rows[0].last_error
    assert "no answer within 3.6 s" in rows[1].last_error
    assert took[1] >= 3.6  # the second call really waited for its doubled timeout
    assert miner.calls == ["status", "status"]


def test_a_miner_timeout_is_a_timed_out_outcome() -> None:
    from gaia.tasks.defined_tasks.weather.pipeline.miner_client import as_outcomes

    with pytest.raises(TimedOut) as raised, as_outcomes():
        raise MinerTimedOut("GET http://miner/weather/jobs/x", 27.0)
    resolution = resolve(raised.value, attempts=1, max_attempts=10, timeout_s=30, policy=POLICY)
    assert (resolution.status, resolution.timeout_s) == (JobStatus.QUEUED, 60)
    assert resolution.error == "GET http://miner/weather/jobs/x: no answer within 27 s"

"""One run end to end: real miner processes, validator worker processes, the local archive.

Eight miners: four healthy ones (two models), one offline, one that never finishes in time,
one that serves a tampered file, one that answers garbage. A worker is killed with SIGKILL
mid-run and another takes over. The run must complete with the right state for every miner,
no duplicate rows, and weights written by the static chain.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from gaia.database.validator_schema import (
    WeatherForecastRun,
    WeatherMinerResponse,
    WeatherMinerScore,
)
from gaia.jobs.queue import JobQueue
from gaia.jobs.schema import ValidatorJob
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.forecast_store import chunk_key
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import PeriodicPayload, RunCreatePayload
from gaia.tasks.defined_tasks.weather.pipeline.workers import all_policies
from gaia.tasks.defined_tasks.weather.protocol import MinerJobStatus
from gaia.tasks.defined_tasks.weather.scoring.records import ScoreKind
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus as S
from gaia.tasks.defined_tasks.weather.states import RunMode, RunStatus
from gaia.validator.periodic import SET_WEIGHTS
from tests.fixtures.archive import ArchiveUrls
from tests.fixtures.miner import MinerProcess, initiate, wait_for_job
from tests.fixtures.subnet import (
    Subnet,
    closed_port,
    garbage_miner,
    new_subnet,
    validator_args,
    validator_worker,
)

HEALTHY = {"good_a": "spectral_advection", "good_b": "spectral_advection",
           "plain_a": "persistence", "plain_b": "persistence"}
FAST = ("--poll-interval-s", "0.5", "--backoff-scale", "0.01", "--lease-s", "4",
        "--scoring-processes", "1", "--workers", "16")

pytestmark = pytest.mark.timeout(900)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


async def _wait_for(
    engine: AsyncEngine, query: str, until: Callable[[list[Any]], bool], timeout_s: float,
    what: str, worker: subprocess.Popen[bytes], log: Path,
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        async with engine.connect() as conn:
            value = (await conn.execute(text(query))).all()
        if until(value):
            return
        if worker.poll() is not None:
            raise AssertionError(f"the validator worker exited; log:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {value}; "
                                 f"log:\n{_tail(log)}")
        await asyncio.sleep(0.5)


async def _tamper_before_the_run(subnet: Subnet, miner: MinerProcess, init: datetime) -> None:
    """Have the miner finish its forecast, then change a day-1 chunk behind its manifest."""
    async with SignedClient(subnet.validator.wallet, timeout=30) as client:
        answer = (await initiate(client, miner, init)).json()
        await wait_for_job(client, miner, answer["job_id"],
                           lambda s: s.status is MinerJobStatus.FORECAST_READY)
    chunk = miner.data_dir / "forecasts" / answer["job_id"] / chunk_key("2t", 0, None)
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF
    chunk.write_bytes(bytes(data))


async def _create_run(factory: async_sessionmaker, init: datetime) -> None:
    # the stalled miner is polled until this deadline, then failed as late: it must leave the
    # healthy miners time to commit on a loaded machine, and not stretch the test much more
    payload = RunCreatePayload(init_time=init, mode=RunMode.LIVE,
                               commit_deadline=datetime.now(UTC) + COMMIT_WINDOW)
    async with factory.begin() as session:
        await JobQueue(all_policies()).enqueue(session, WeatherJob.RUN_CREATE, payload,
                                               singleton_key="weather.run.create:test")


async def _enqueue_weights(factory: async_sessionmaker) -> None:
    async with factory.begin() as session:
        await JobQueue(all_policies()).enqueue(session, SET_WEIGHTS, PeriodicPayload(slot="test"),
                                               singleton_key=f"{SET_WEIGHTS}:test")


COMMIT_WINDOW = timedelta(seconds=120)


def _build_subnet(tmp_path: Path, urls: ArchiveUrls, garbage_port: int) -> Subnet:
    subnet = new_subnet(tmp_path, urls)
    for role in (*HEALTHY, "slow", "tampered"):
        subnet.add_miner(role)
    offline, garbage = subnet.add_miner("offline"), subnet.add_miner("garbage")
    offline.ip, offline.port = "127.0.0.1", closed_port()
    garbage.ip, garbage.port = "127.0.0.1", garbage_port
    subnet.write_chain()
    return subnet


async def test_a_run_end_to_end(
    tmp_path: Path, archive_urls: ArchiveUrls, archive, engine: AsyncEngine,  # type: ignore[no-untyped-def]
    session_factory: async_sessionmaker, database_url: str,
) -> None:
    init = archive.init_times[0]
    with garbage_miner() as garbage_port:
        subnet = _build_subnet(tmp_path, archive_urls, garbage_port)
        try:
            for role, model in HEALTHY.items():
                subnet.start_miner(role, model)
            subnet.start_miner("slow", "tests.fixtures.miner:StalledPersistence")
            await _tamper_before_the_run(subnet, subnet.start_miner("tampered", "persistence"), init)
            await _run_with_a_worker_killed(subnet, session_factory, engine, database_url, init)
        finally:
            subnet.stop()
    await _check_outcomes(subnet, session_factory)
    await _check_no_duplicates(engine)
    _check_weights(subnet)


async def _run_with_a_worker_killed(
    subnet: Subnet, factory: async_sessionmaker, engine: AsyncEngine, database_url: str,
    init: datetime,
) -> None:
    args = validator_args(subnet, database_url, *FAST)
    await _create_run(factory, init)
    first_log, second_log = subnet.root / "worker-1.log", subnet.root / "worker-2.log"
    with validator_worker(args, first_log) as first:
        await _wait_for(
            engine, "SELECT count(*) FROM weather_miner_responses WHERE status IN "
            "('forecast_ready', 'day1_scoring', 'day1_scored', 'era5_scoring')",
            lambda rows: rows[0][0] >= 1, 240, "a forecast to be committed", first, first_log,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    with validator_worker(args, second_log) as second:
        await _wait_for(engine, "SELECT status::text FROM weather_forecast_runs",
                        lambda rows: bool(rows) and rows[0][0] in ("completed", "error"), 600,
                        "the run to complete", second, second_log)
        await _enqueue_weights(factory)
        await _wait_for(engine, f"SELECT status::text FROM validator_jobs WHERE job_type = "
                                f"'{SET_WEIGHTS}'", lambda rows: rows[0][0] in ("succeeded", "failed"),
                        60, "weights to be set", second, second_log)


async def _check_outcomes(subnet: Subnet, factory: async_sessionmaker) -> None:
    async with factory() as session:
        run = await session.scalar(select(WeatherForecastRun))
        responses = {r.miner_hotkey: r for r in await session.scalars(select(WeatherMinerResponse))}
        rollups = dict((await session.execute(
            select(WeatherMinerScore.miner_hotkey, WeatherMinerScore.value)
            .where(WeatherMinerScore.kind == ScoreKind.ROLLUP, WeatherMinerScore.metric == "score")
        )).all())
        jobs = {j.payload.get("miner_hotkey"): j for j in await session.scalars(
            select(ValidatorJob).where(ValidatorJob.job_type == WeatherJob.QUERY_MINER))}
    assert run is not None and run.status is RunStatus.COMPLETED, run and run.error
    by_role = {m.role: responses[m.hotkey] for m in subnet.miners}
    for role in HEALTHY:
        assert by_role[role].status is S.ERA5_SCORED, (role, by_role[role].failure_reason)
        assert by_role[role].manifest_hash and by_role[role].inference_started_at
    offline = by_role["offline"]
    assert (offline.status, offline.failed_step) == (S.FAILED, "query_miner")
    assert offline.failure_reason.startswith("miner offline")
    assert jobs[subnet.member("offline").hotkey].attempts == 3
    garbage = by_role["garbage"]
    assert (garbage.status, garbage.failed_step) == (S.FAILED, "query_miner")
    assert "malformed" in garbage.failure_reason
    assert jobs[subnet.member("garbage").hotkey].attempts == 1
    slow = by_role["slow"]
    assert (slow.status, slow.failed_step) == (S.FAILED, "poll_miner")
    assert slow.failure_reason.startswith("late"), slow.failure_reason
    tampered = by_role["tampered"]
    assert (tampered.status, tampered.failed_step) == (S.FAILED, "day1_score")
    assert "sha256" in tampered.failure_reason or "size" in tampered.failure_reason
    _check_parallel([by_role[role] for role in HEALTHY])
    good = [rollups[subnet.member(r).hotkey] for r in HEALTHY if HEALTHY[r] != "persistence"]
    plain = [rollups[subnet.member(r).hotkey] for r in HEALTHY if HEALTHY[r] == "persistence"]
    assert min(good) > max(plain), rollups


def _check_parallel(responses: list[WeatherMinerResponse]) -> None:
    """Every healthy miner was started before any forecast was committed."""
    last_start = max(r.inference_started_at for r in responses)
    first_commit = min(r.manifest_fetched_at for r in responses)
    assert last_start < first_commit


async def _check_no_duplicates(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        doubled_jobs = (await conn.execute(text(
            "SELECT singleton_key FROM validator_jobs WHERE singleton_key IS NOT NULL "
            "GROUP BY singleton_key HAVING count(*) > 1"))).all()
        scores = (await conn.execute(text(
            "SELECT count(*), count(DISTINCT (run_id, miner_hotkey, kind, variable, level, "
            "lead_hours, metric)) FROM weather_miner_scores"))).one()
        responses = (await conn.execute(text(
            "SELECT count(*), count(DISTINCT miner_hotkey) FROM weather_miner_responses"))).one()
    assert doubled_jobs == []
    assert scores[0] == scores[1] > 0
    assert responses == (8, 8)


def _check_weights(subnet: Subnet) -> None:
    weights_file = subnet.chain_path.with_name("neurons.weights") / f"{subnet.validator.hotkey}.json"
    submitted = json.loads(weights_file.read_text())
    weights = dict(zip(submitted["uids"], submitted["weights"], strict=True))
    assert sum(weights.values()) == pytest.approx(1.0)
    healthy_uids = {subnet.member(role).uid for role in HEALTHY}
    assert {uid for uid, w in weights.items() if w > 0} <= healthy_uids
    assert all(weights.get(uid, 0) > 0 for uid in healthy_uids)

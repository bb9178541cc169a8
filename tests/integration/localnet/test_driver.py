"""The localnet's driver and scoreboard on a real validator database: snapshots, the watcher's
moves (kill the dying miner, notice a dead validator, give up on time), weights and the
gathered scoreboard."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bittensor as bt
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.database.validator_schema import WeatherForecastRun, WeatherMinerResponse
from gaia.localnet.calendar import validator_settings
from gaia.localnet.display import labels_of
from gaia.localnet.driver import RunTimedOut, RunWatcher, ValidatorDied, run_weights
from gaia.localnet.processes import ManagedProcess
from gaia.localnet.report import gather
from gaia.localnet.subnet import Member, MinerSpec, Subnet, make_wallet
from gaia.localnet.watch import Snapshot, take_snapshot
from gaia.tasks.defined_tasks.weather.data.archive import ArchiveInfo
from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG
from gaia.tasks.defined_tasks.weather.scoring.records import ComponentRecord, Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunMode, RunStatus
from gaia.validator.database import validator_database_manager as db
from gaia.validator.weights import WeightVector

S = MinerResponseStatus
START = datetime(2025, 1, 1, tzinfo=UTC)
INIT = START + timedelta(hours=6)
ROLES = (("miner1", "spectral_advection", False), ("miner2", "persistence", False),
         ("miner3", "persistence", True))


@pytest.fixture(scope="module")
def wallets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bt.Wallet]:
    root = tmp_path_factory.mktemp("wallets")
    return {name: make_wallet(root, name) for name in ("validator", *(r for r, _, _ in ROLES))}


@pytest.fixture
def subnet(tmp_path: Path, wallets: dict[str, bt.Wallet]) -> Iterator[Subnet]:
    archive = ArchiveInfo(tmp_path, 5.0, START, 12, 1, (START, INIT), (0, 6),
                          START + timedelta(days=12))
    miners = [Member(MinerSpec(role, model, dies=dies), wallets[role], uid)
              for uid, (role, model, dies) in enumerate(ROLES, start=1)]
    net = Subnet(tmp_path, archive, ArchiveServer(tmp_path), Member(None, wallets["validator"], 0),
                 miners)
    try:
        yield net
    finally:
        for process in [*(m.process for m in miners if m.process), *net.workers]:
            process.stop()


def _server(tmp_path: Path, name: str) -> ManagedProcess:
    """A real child process that keeps running until it is stopped."""
    return ManagedProcess(name, "http.server", ["0", "--bind", "127.0.0.1"],
                          tmp_path / "logs" / f"{name}.log").start()


async def _run(factory: async_sessionmaker[AsyncSession], subnet: Subnet, status: RunStatus,
               responses: dict[str, S]) -> int:
    """A hindcast run in ``status`` with one response per named role, in the given states."""
    members = {m.spec.role: m for m in subnet.miners if m.spec}
    async with factory.begin() as session:
        await db.sync_miners(session, [m.neuron() for m in [subnet.validator, *subnet.miners]])
        run_id, _ = await db.create_run(session, INIT, RunMode.HINDCAST, INIT + timedelta(hours=9),
                                        grid_deg=GRID_DEG)
        await session.execute(update(WeatherForecastRun)
                              .where(WeatherForecastRun.id == run_id).values(status=status))
        for role, state in responses.items():
            member = members[role]
            response_id = await db.insert_response(session, run_id, member.hotkey, member.uid)
            failed = state is S.FAILED
            await session.execute(update(WeatherMinerResponse)
                                  .where(WeatherMinerResponse.id == response_id)
                                  .values(status=state,
                                          failure_reason="no forecast in time" if failed else None,
                                          failed_step="poll_miner" if failed else None))
    return run_id


def _watcher(subnet: Subnet, factory: async_sessionmaker[AsyncSession], stop: asyncio.Event,
             seen: list[Snapshot], said: list[str]) -> RunWatcher:
    def say(message: str) -> None:
        said.append(message)
        stop.set()

    return RunWatcher(subnet, factory, seen.append, say, stop)


async def test_snapshot_before_the_run_exists_is_waiting(
        session_factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_factory() as session:
        snapshot = await take_snapshot(session)
    assert (snapshot.run_id, snapshot.run_status, snapshot.run_label) == (None, None, "waiting")
    assert not snapshot.finished and snapshot.miners == {}


async def test_snapshot_reads_the_newest_run_and_its_miners_as_enums(
        session_factory: async_sessionmaker[AsyncSession], subnet: Subnet) -> None:
    run_id = await _run(session_factory, subnet, RunStatus.SCORING_DAY1,
                        {"miner1": S.DAY1_SCORED, "miner3": S.FAILED})
    async with session_factory() as session:
        snapshot = await take_snapshot(session)
    one, three = subnet.miners[0].hotkey, subnet.miners[2].hotkey
    assert (snapshot.run_id, snapshot.run_status) == (run_id, RunStatus.SCORING_DAY1)
    assert snapshot.miners[one].status is S.DAY1_SCORED
    assert (snapshot.miners[three].status, snapshot.miners[three].failed_step) == (
        S.FAILED, "poll_miner")


async def test_watcher_kills_only_the_dying_miner_once_it_accepted_its_job(
        session_factory: async_sessionmaker[AsyncSession], subnet: Subnet,
        tmp_path: Path) -> None:
    healthy, dying = subnet.miners[0], subnet.miners[2]
    healthy.process, dying.process = _server(tmp_path, "miner1"), _server(tmp_path, "miner3")
    await _run(session_factory, subnet, RunStatus.QUERYING_MINERS,
               {"miner1": S.INFERENCE_RUNNING, "miner3": S.INFERENCE_RUNNING})
    stop, seen, said = asyncio.Event(), list[Snapshot](), list[str]()
    snapshot = await _watcher(subnet, session_factory, stop, seen, said).until_finished(60)
    assert said == ["miner3 accepted its job (inference_running) and was killed with SIGKILL, "
                    "as in a crash"]
    assert not dying.process.running() and healthy.process.running()
    assert seen == [snapshot] and not snapshot.finished


async def test_watcher_returns_the_finished_run_without_killing(
        session_factory: async_sessionmaker[AsyncSession], subnet: Subnet,
        tmp_path: Path) -> None:
    subnet.miners[2].process = _server(tmp_path, "miner3")
    await _run(session_factory, subnet, RunStatus.COMPLETED,
               {"miner1": S.ERA5_SCORED, "miner3": S.FAILED})
    stop, seen, said = asyncio.Event(), list[Snapshot](), list[str]()
    snapshot = await _watcher(subnet, session_factory, stop, seen, said).until_finished(60)
    assert snapshot.finished and snapshot.run_status is RunStatus.COMPLETED
    assert said == [] and subnet.miners[2].process.running()


async def test_watcher_stops_when_every_validator_worker_exited(
        session_factory: async_sessionmaker[AsyncSession], subnet: Subnet,
        tmp_path: Path) -> None:
    worker = ManagedProcess("validator-1", "json.tool", ["--help"],
                            tmp_path / "logs" / "validator-1.log").start()
    assert worker.popen is not None
    worker.popen.wait(timeout=30)
    subnet.workers.append(worker)
    await _run(session_factory, subnet, RunStatus.QUERYING_MINERS, {"miner1": S.CREATED})
    watcher = _watcher(subnet, session_factory, asyncio.Event(), [], [])
    with pytest.raises(ValidatorDied, match="every validator worker exited") as raised:
        await watcher.until_finished(60)
    assert "usage" in str(raised.value)


async def test_watcher_gives_up_past_its_timeout_naming_the_run_status(
        session_factory: async_sessionmaker[AsyncSession], subnet: Subnet) -> None:
    watcher = _watcher(subnet, session_factory, asyncio.Event(), [], [])
    with pytest.raises(RunTimedOut, match=r"within 0 s \(run is waiting\)"):
        await watcher.until_finished(0)


async def _score(factory: async_sessionmaker[AsyncSession], run_id: int, hotkey: str,
                 records: list[ComponentRecord]) -> None:
    async with factory.begin() as session:
        await db.store_scores(session, run_id, hotkey, records)


def _rollup(value: float) -> ComponentRecord:
    return ComponentRecord(ScoreKind.ROLLUP, "all", 0, 0, Metric.SCORE, value)


async def test_run_weights_follow_the_run_scores_and_sum_to_one(
        session_factory: async_sessionmaker[AsyncSession], subnet: Subnet) -> None:
    run_id = await _run(session_factory, subnet, RunStatus.COMPLETED,
                        {"miner1": S.ERA5_SCORED, "miner2": S.ERA5_SCORED, "miner3": S.FAILED})
    one, two, _ = subnet.miners
    await _score(session_factory, run_id, one.hotkey, [_rollup(0.8)])
    await _score(session_factory, run_id, two.hotkey, [_rollup(0.4)])
    vector = await run_weights(session_factory, run_id)
    weights = dict(zip(vector.uids, vector.weights, strict=True))
    assert list(vector.uids) == sorted(vector.uids)
    assert sum(vector.weights) == pytest.approx(1.0)
    assert weights[1] == pytest.approx(0.8) and weights[2] == pytest.approx(0.2)  # s² / Σ s²
    assert weights.get(3, 0.0) == 0.0 and weights.get(0, 0.0) == 0.0


async def test_gather_builds_the_scoreboard_from_the_stored_scores(
        session_factory: async_sessionmaker[AsyncSession], subnet: Subnet,
        tmp_path: Path) -> None:
    run_id = await _run(session_factory, subnet, RunStatus.COMPLETED,
                        {"miner1": S.ERA5_SCORED, "miner3": S.FAILED})
    one = subnet.miners[0]
    await _score(session_factory, run_id, one.hotkey, [
        ComponentRecord(ScoreKind.DAY1, "all", 0, 0, Metric.SCORE, 0.9), _rollup(0.75),
        ComponentRecord(ScoreKind.ERA5, "2t", 0, 24, Metric.SKILL, 0.5),
        ComponentRecord(ScoreKind.ERA5, "t", 500, 24, Metric.SKILL, 0.25),
        ComponentRecord(ScoreKind.ERA5, "t", 500, 48, Metric.SKILL, -0.5),
        ComponentRecord(ScoreKind.ERA5, "t", 500, 48, Metric.RMSE, 3.0)])
    async with session_factory() as session:
        board = await gather(session, subnet, run_id, RunStatus.COMPLETED,
                             WeightVector((1,), (1.0,)), tmp_path / "weights.json")
    rows = {row.role: row for row in board.rows}
    first, second, third = rows["miner1"], rows["miner2"], rows["miner3"]
    assert (board.run_id, board.init_time, board.weights_file) == (
        run_id, INIT.isoformat(), str(tmp_path / "weights.json"))
    assert (first.state, first.day1_score, first.run_score, first.weight) == (
        S.ERA5_SCORED, 0.9, 0.75, 1.0)
    assert first.era5_skill_by_lead == {24: pytest.approx(0.375), 48: -0.5}
    assert (second.state, second.day1_score, second.run_score, second.weight) == (
        None, None, None, 0.0)
    assert (third.state, third.failed_step, third.failure_reason, third.dies) == (
        S.FAILED, "poll_miner", "no forecast in time", True)
    assert [row.role for row in board.ranked()] == ["miner1", "miner2", "miner3"]


def test_labels_name_each_miner_and_mark_the_dying_one(subnet: Subnet) -> None:
    labels = labels_of([subnet.validator, *subnet.miners])
    assert [(label.role, label.model, label.uid) for label in labels] == [
        ("miner1", "spectral_advection", 1), ("miner2", "persistence", 2),
        ("miner3", "persistence (dies)", 3)]
    assert labels[0].hotkey == subnet.miners[0].hotkey


def test_the_validator_checks_commitments_against_the_archive_grid(subnet: Subnet) -> None:
    settings = validator_settings(subnet, "postgresql+asyncpg://gaia@127.0.0.1/localnet")
    assert settings.validator.grid_deg == subnet.archive.grid_deg == 5.0
    assert settings.validator.grid_deg != GRID_DEG  # not the protocol's default

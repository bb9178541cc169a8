"""Drive one hindcast run to its end: create it on the real queue, watch it, SIGKILL the
dying miner once it has accepted its job, then compute and submit the run's weights."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.chain.static import StaticChainClient
from gaia.clock import system_clock
from gaia.database.validator_schema import WeatherMinerResponse, WeatherMinerScore
from gaia.jobs.queue import JobQueue
from gaia.localnet.subnet import Member, Subnet
from gaia.localnet.watch import Snapshot, take_snapshot
from gaia.tasks.defined_tasks.weather.pipeline.workers import all_policies
from gaia.tasks.defined_tasks.weather.scoring.records import Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus
from gaia.validator.admin import create_hindcast
from gaia.validator.database import validator_database_manager as db
from gaia.validator.periodic import package_version_key
from gaia.validator.weights import RunScores, WeightVector, compute_weights

WATCH_INTERVAL_S = 0.5
ACCEPTED = frozenset({MinerResponseStatus.FETCH_INITIATED, MinerResponseStatus.INFERENCE_RUNNING})


class RunTimedOut(RuntimeError):
    pass


class ValidatorDied(RuntimeError):
    pass


@dataclass
class RunWatcher:
    """Polls the database until the run ends; ``on_snapshot`` sees every read, ``say``
    gets the localnet's own actions."""

    subnet: Subnet
    factory: async_sessionmaker[AsyncSession]
    on_snapshot: Callable[[Snapshot], None]
    say: Callable[[str], None]
    stop: asyncio.Event

    async def until_finished(self, timeout_s: float) -> Snapshot:
        deadline = time.monotonic() + timeout_s
        while True:
            async with self.factory() as session:
                snapshot = await take_snapshot(session)
            self.on_snapshot(snapshot)
            self._kill_the_dying(snapshot)
            if snapshot.finished or self.stop.is_set():
                return snapshot
            self._check_validator()
            if time.monotonic() > deadline:
                raise RunTimedOut(f"the run did not finish within {timeout_s:.0f} s "
                                  f"(run is {snapshot.run_label}); logs in {self.subnet.root}/logs")
            try:
                await asyncio.wait_for(self.stop.wait(), WATCH_INTERVAL_S)
            except TimeoutError:
                continue

    def _kill_the_dying(self, snapshot: Snapshot) -> None:
        for miner in self.subnet.miners:
            state = snapshot.miners.get(miner.hotkey)
            if _should_die(miner) and state is not None and state.status in ACCEPTED:
                assert miner.process is not None and miner.spec is not None
                miner.process.kill()
                self.say(f"{miner.spec.role} accepted its job ({state.status}) and was killed "
                         "with SIGKILL, as in a crash")

    def _check_validator(self) -> None:
        if self.subnet.workers and not any(w.running() for w in self.subnet.workers):
            worker = self.subnet.workers[0]
            raise ValidatorDied(f"every validator worker exited; {worker.log_path}:\n"
                                f"{worker.log_tail()}")


def _should_die(miner: Member) -> bool:
    return bool(miner.spec and miner.spec.dies and miner.process and miner.process.running())


async def start_hindcast(
    factory: async_sessionmaker[AsyncSession], subnet: Subnet, commit_window: timedelta
) -> str:
    """Queue a hindcast run for the archive's first usable cycle (its truth is there)."""
    init_time = subnet.archive.init_times[0]
    async with factory.begin() as session:
        return await create_hindcast(session, JobQueue(all_policies()), init_time, commit_window,
                                     system_clock())


async def run_weights(factory: async_sessionmaker[AsyncSession], run_id: int) -> WeightVector:
    """Weights from this one run's roll-up scores (window 1), by the validator's own rules.

    The validator's periodic weights job counts live runs only; a hindcast never feeds it, so
    the localnet applies ``compute_weights`` to its run to show weight setting locally."""
    async with factory() as session:
        queried_at = await session.scalar(
            select(func.min(WeatherMinerResponse.created_at))
            .where(WeatherMinerResponse.run_id == run_id))
        rows = await session.execute(
            select(WeatherMinerScore.miner_hotkey, WeatherMinerScore.value)
            .where(WeatherMinerScore.run_id == run_id, WeatherMinerScore.kind == ScoreKind.ROLLUP,
                   WeatherMinerScore.metric == Metric.SCORE.value))
        scores = {hotkey: float(value or 0.0) for hotkey, value in rows}
        registered = await db.registrations(session)
    assert queried_at is not None, f"run {run_id} has no responses"
    return compute_weights([RunScores(run_id, queried_at, scores)], registered, window=1)


async def submit_weights(subnet: Subnet, vector: WeightVector) -> StaticChainClient:
    """Set the weights on the static chain as the validator's hotkey."""
    chain = StaticChainClient(subnet.chain_path, hotkey=subnet.validator.hotkey)
    await chain.set_weights(vector.uids, vector.weights, package_version_key())
    return chain

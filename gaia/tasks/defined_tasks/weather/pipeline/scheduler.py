"""The scheduler: enqueues the day's run and the periodic work, by slot keys.

Any number of validator processes may run it: the run's job carries its day
(``weather.run.create:2026-11-28``) and the run row is unique per init time, so they make one
run; periodic jobs carry their slot (``validator.metagraph_sync:2026-11-28T18:10:00``) and a
slot whose job exists (live or finished) is not enqueued again. Time comes from the injected
clock; the scheduler does no work itself. Between ticks it sleeps, on that clock, until the
next moment something becomes due (:meth:`Scheduler.next_due`), at most ``max_sleep_s``.

While the validator is paused (:mod:`gaia.validator.pause`) the day's run is not enqueued and
its slot stays unused: the first tick after ``resume`` enqueues it if its commit window is
still open. Periodic work (metagraph sync, weights) is enqueued paused or not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.clock import Now, sleep_for
from gaia.jobs.queue import JobQueue, singleton_key_used
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import PeriodicPayload, RunCreatePayload
from gaia.tasks.defined_tasks.weather.pipeline.timing import (
    DailyRun,
    RunTiming,
    next_slot,
    periodic_slot,
)
from gaia.tasks.defined_tasks.weather.states import RunMode
from gaia.validator.database import validator_database_manager as db
from gaia.validator.pause import pause_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    job_type: str
    every: timedelta


class Scheduler:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        queue: JobQueue,
        timing: RunTiming,
        clock: Now,
        periodic: Sequence[PeriodicJob] = (),
        *,
        paused_by_setting: bool = False,
    ) -> None:
        self._session_factory = session_factory
        self._queue = queue
        self._timing = timing
        self._clock = clock
        self._periodic = tuple(periodic)
        self._paused_by_setting = paused_by_setting
        self._held_slot: str | None = None  # the day whose run a pause held (logged once)

    async def tick(self) -> list[str]:
        """Enqueue whatever is due now; returns the singleton keys it enqueued."""
        now = self._clock()
        enqueued = []
        async with self._session_factory.begin() as session:
            due = self._timing.due_run(now)
            if due is not None and await self._run_wanted(session, due):
                key = f"{WeatherJob.RUN_CREATE}:{due.slot_key}"
                payload = RunCreatePayload(init_time=due.init_time, mode=RunMode.LIVE,
                                           commit_deadline=due.commit_deadline)
                if await self._enqueue_once(session, WeatherJob.RUN_CREATE, payload, key):
                    late = now - due.scheduled_at > timedelta(minutes=5)
                    log.info("run for GFS %s due%s", due.init_time, " (created late)" if late else "")
                    enqueued.append(key)
            for job in self._periodic:
                slot = periodic_slot(now, job.every)
                key = f"{job.job_type}:{slot}"
                if await self._enqueue_once(session, job.job_type, PeriodicPayload(slot=slot), key):
                    enqueued.append(key)
        return enqueued

    async def _run_wanted(self, session: AsyncSession, due: DailyRun) -> bool:
        """The day's run does not exist yet and the validator is not paused."""
        if await db.run_exists(session, due.init_time, RunMode.LIVE):
            return False
        state = await pause_state(session, forced=self._paused_by_setting)
        if not state.paused:
            return True
        if self._held_slot != due.slot_key:
            log.info("run for GFS %s due, not created: validator %s", due.init_time,
                     state.describe())
            self._held_slot = due.slot_key
        return False

    async def _enqueue_once(
        self, session: AsyncSession, job_type: str, payload: BaseModel, key: str
    ) -> bool:
        if await singleton_key_used(session, key):
            return False
        job_id = await self._queue.enqueue(session, job_type, payload, singleton_key=key)
        return job_id is not None

    def next_due(self, now: datetime) -> datetime:
        """The first moment after ``now`` at which a tick could enqueue something."""
        moments = [self._timing.next_scheduled(now)]
        moments += [next_slot(now, job.every) for job in self._periodic]
        return min(moments)

    async def run(self, stop: asyncio.Event, max_sleep_s: float = 60.0) -> None:
        while not stop.is_set():
            await self.tick()
            now = self._clock()
            wait_s = min((self.next_due(now) - now).total_seconds(), max_sleep_s)
            sleeping = asyncio.ensure_future(sleep_for(self._clock, wait_s))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({sleeping, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (sleeping, stopping):
                waiter.cancel()

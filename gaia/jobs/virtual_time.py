"""Run workers on a :class:`~gaia.clock.VirtualClock`: time jumps when all work is done.

:class:`TimeMachine` waits until the system is *settled* (every in-process worker idle, no job
running or due in the queue, every extra ``busy`` probe false), then moves the clock to the
next moment anything is due: the earliest queued ``run_at``, the clock's earliest sleeper,
or an extra event source (a scheduler's next slot). It then runs ``on_tick`` (a scheduler's ``tick``) and notifies the
workers (their claim compares ``run_at`` with the clock).
Production durations stay as they are; only the waiting is skipped. Nothing here knows
about weather.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.clock import VirtualClock
from gaia.jobs.queue import QueueTiming, queue_timing, wake_workers
from gaia.jobs.worker import Worker

BusyProbe = Callable[[], Awaitable[bool]]
EventSource = Callable[[datetime], datetime | None]
Tick = Callable[[datetime], Awaitable[object]]


class NeverSettled(RuntimeError):
    """Work kept running or stayed due for longer than the settle limit (real time)."""


@dataclass
class TimeMachine:
    clock: VirtualClock
    session_factory: async_sessionmaker[AsyncSession]
    workers: Sequence[Worker]
    busy: Sequence[BusyProbe] = ()
    events: Sequence[EventSource] = ()
    on_tick: Tick | None = None
    on_settled: Tick | None = None  # sees the system at rest, before each jump
    poll_s: float = 0.01  # real seconds between settle checks
    settle_limit_s: float = 300.0  # real seconds without progress before NeverSettled
    jumps: int = field(default=0, init=False)
    waited_s: defaultdict[str, float] = field(  # real s, by cause
        default_factory=lambda: defaultdict(float), init=False)

    async def settle(self) -> QueueTiming:
        """Wait until nothing runs and nothing is due at the clock's now (two checks in a row,
        a poll apart, so work woken by the last jump has had its turn). Raises
        :class:`NeverSettled` when nothing changes for ``settle_limit_s`` while work is left
        (a moment with hundreds of jobs may take long; a stuck one never moves)."""
        last = progressed = time.monotonic()
        calm, seen = 0, None
        while True:
            timing = await self._timing()
            cause = await self._cause(timing)
            now = time.monotonic()
            self.waited_s[cause or "settling"] += now - last
            last = now
            if (timing, cause) != seen:
                seen, progressed = (timing, cause), now
            calm = 0 if cause else calm + 1
            if calm >= 2:
                return timing
            if now - progressed > self.settle_limit_s:
                raise NeverSettled(f"at {self.clock().isoformat()} nothing moved for "
                                   f"{self.settle_limit_s:g} s: {cause}, {timing}")
            await asyncio.sleep(self.poll_s)

    async def _cause(self, timing: QueueTiming) -> str | None:
        """Why the system is not at rest (None when it is)."""
        if not timing.settled:
            return "jobs"
        if not all(worker.idle for worker in self.workers):
            return "workers"
        if any([await probe() for probe in self.busy]):
            return "busy"
        return None

    def next_moment(self, timing: QueueTiming) -> datetime | None:
        now = self.clock()
        candidates = [timing.next_run_at, self.clock.next_wakeup()]
        candidates += [source(now) for source in self.events]
        later = [moment for moment in candidates if moment is not None and moment > now]
        return min(later, default=None)

    async def step(self, limit: datetime) -> bool:
        """Settle, then jump to the next due moment (at most ``limit``); False when there is
        nothing left to jump to before ``limit``."""
        timing = await self.settle()
        if self.on_settled is not None:
            await self.on_settled(self.clock())
        target = self.next_moment(timing)
        if target is None or target > limit:
            if self.clock() < limit:
                await self._jump(limit)
            return False
        await self._jump(target)
        return True

    async def run_until(self, limit: datetime) -> None:
        """Live through every due moment up to ``limit`` and settle there (``on_tick`` runs
        first at the current moment; ticks must be idempotent)."""
        if self.on_tick is not None:
            await self.on_tick(self.clock())
        while await self.step(limit):
            pass
        await self.settle()

    async def _jump(self, moment: datetime) -> None:
        self.clock.advance_to(moment)
        self.jumps += 1
        if self.on_tick is not None:
            await self.on_tick(moment)
        async with self.session_factory.begin() as session:
            await wake_workers(session)

    async def _timing(self) -> QueueTiming:
        async with self.session_factory() as session:
            return await queue_timing(session, self.clock())

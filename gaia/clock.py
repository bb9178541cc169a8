"""The one source of time for every decision that depends on it.

A clock is a callable returning the current UTC time (``clock()``), plus ``sleep_until`` for
the loops that wait for a moment (the scheduler, the miner's retention purge). Two clocks:

- :data:`system_clock` (a :class:`SystemClock`): wall time; what production uses.
- :class:`VirtualClock`: time that moves only when told to. A simulation advances it to the
  next moment something is due (a queued job's ``run_at``, a sleeper's wake-up) once every
  worker is idle, so weeks of operation with production durations run in minutes. Its
  sleepers are registered with it, so :meth:`VirtualClock.next_wakeup` knows when the next
  loop wants to run.

Code that only reads the time takes a :data:`Now` (any ``() -> datetime``); code that also
waits takes a :class:`Clock`. Leases and heartbeats stay on the event loop's monotonic time:
they guard against dead processes, not against the calendar.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

Now = Callable[[], datetime]


@runtime_checkable
class Clock(Protocol):
    def __call__(self) -> datetime: ...

    async def sleep_until(self, moment: datetime) -> None: ...


class SystemClock:
    """Wall-clock UTC time; ``sleep_until`` sleeps on the event loop."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, moment: datetime) -> None:
        delay = (moment - self()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


system_clock = SystemClock()


class VirtualClock:
    """A clock that stands still until :meth:`advance_to` moves it (never backwards).

    Sleepers (:meth:`sleep_until`) wake when the clock reaches their moment; the earliest
    pending one is :meth:`next_wakeup`. Use it from one event loop.
    """

    def __init__(self, start: datetime) -> None:
        _require_aware(start)
        self._now = start
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._listeners: list[Callable[[datetime], None]] = []

    def __call__(self) -> datetime:
        return self._now

    async def sleep_until(self, moment: datetime) -> None:
        _require_aware(moment)
        if moment <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (moment, next(self._order), future))
        await future

    def next_wakeup(self) -> datetime | None:
        """The earliest moment a live sleeper waits for (None when nobody sleeps)."""
        while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def on_advance(self, listener: Callable[[datetime], None]) -> None:
        """Call ``listener(new_now)`` after every move of the clock."""
        self._listeners.append(listener)

    def advance_to(self, moment: datetime) -> None:
        """Move the clock to ``moment`` and wake every sleeper due by then."""
        _require_aware(moment)
        if moment < self._now:
            raise ValueError(f"a clock never goes back: {moment} is before {self._now}")
        self._now = moment
        while self._sleepers and self._sleepers[0][0] <= moment:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        for listener in self._listeners:
            listener(moment)

    def advance(self, by: timedelta) -> None:
        self.advance_to(self._now + by)


async def sleep_for(clock: Now, seconds: float) -> None:
    """Sleep ``seconds`` of ``clock``'s time (a plain ``Now`` callable sleeps in real time)."""
    if isinstance(clock, Clock):
        await clock.sleep_until(clock() + timedelta(seconds=seconds))
    else:
        await asyncio.sleep(seconds)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError(f"clock times must be timezone-aware, got naive {moment}")

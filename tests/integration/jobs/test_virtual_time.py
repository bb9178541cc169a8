"""A real worker on the real queue, living through simulated days on a virtual clock."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from gaia.clock import VirtualClock
from gaia.jobs import (
    JobQueue,
    JobRegistry,
    NotReady,
    RetryPolicy,
    Worker,
    WorkerOptions,
    asyncpg_dsn,
)
from gaia.jobs.virtual_time import NeverSettled, TimeMachine

T0 = datetime(2025, 1, 1, 18, tzinfo=UTC)
WAIT = RetryPolicy(3, (300,), timeout_s=30, max_timeout_s=60, not_ready_uses_attempt=False)
POLL = timedelta(seconds=300)


class Chain:
    """``test.poll`` waits in 300 s steps until two hours have passed, then enqueues
    ``test.later`` for the next day; every run notes the clock's time."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.queue = JobQueue({"test.poll": WAIT, "test.later": WAIT}, clock)
        self.seen: list[tuple[str, datetime]] = []

    async def poll(self, payload: dict, ctx) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(("poll", self.clock()))
        if self.clock() < T0 + timedelta(hours=2):
            raise NotReady(self.clock() + POLL, "still running")
        async with ctx.session_factory.begin() as session:
            await self.queue.enqueue(session, "test.later", {}, run_at=T0 + timedelta(days=1))

    async def later(self, payload: dict, ctx) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(("later", self.clock()))


def _worker(chain: Chain, database_url: str, session_factory) -> Worker:  # type: ignore[no-untyped-def]
    registry = JobRegistry()
    registry.register("test.poll", chain.poll, policy=WAIT)
    registry.register("test.later", chain.later, policy=WAIT)
    return Worker(asyncpg_dsn(database_url), registry, session_factory,
                  WorkerOptions(concurrency=4, idle_poll_s=600), clock=chain.clock)


async def test_the_clock_jumps_from_due_time_to_due_time(database_url, session_factory):
    clock = VirtualClock(T0)
    chain = Chain(clock)
    async with session_factory.begin() as session:
        await chain.queue.enqueue(session, "test.poll", {})
    worker = _worker(chain, database_url, session_factory)
    running = asyncio.create_task(worker.run())
    sleeper = asyncio.create_task(clock.sleep_until(T0 + timedelta(hours=7)))
    machine = TimeMachine(clock, session_factory, [worker])
    began = time.monotonic()
    await machine.run_until(T0 + timedelta(days=2))
    worker.stop()
    await running

    polls = [moment for kind, moment in chain.seen if kind == "poll"]
    assert polls == [T0 + i * POLL for i in range(25)]  # every 300 s, never in between
    assert chain.seen[-1] == ("later", T0 + timedelta(days=1))
    assert sleeper.done()  # the sleeper's moment was a stop too
    # 24 waits, the sleeper, the next day's job, the limit
    assert machine.jumps == 24 + 1 + 1 + 1
    assert clock() == T0 + timedelta(days=2)
    assert time.monotonic() - began < 60  # two simulated days


async def test_busy_work_holds_the_clock_and_a_stuck_moment_is_reported(session_factory):
    clock = VirtualClock(T0)
    release = asyncio.Event()

    async def busy() -> bool:
        return not release.is_set()

    machine = TimeMachine(clock, session_factory, [], busy=[busy], settle_limit_s=0.3)
    with pytest.raises(NeverSettled, match="busy"):
        await machine.run_until(T0 + timedelta(hours=1))
    assert clock() == T0
    release.set()
    await machine.run_until(T0 + timedelta(hours=1))
    assert clock() == T0 + timedelta(hours=1)
    assert machine.waited_s["busy"] > 0.2

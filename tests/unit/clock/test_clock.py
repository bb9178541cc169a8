"""The virtual clock: stands still until moved, wakes sleepers in order, never goes back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from gaia.clock import VirtualClock, sleep_for, system_clock

T0 = datetime(2025, 1, 1, 18, tzinfo=UTC)


async def test_sleepers_wake_in_order_when_the_clock_reaches_them():
    clock = VirtualClock(T0)
    woke: list[tuple[str, datetime]] = []

    async def sleeper(name: str, hours: float) -> None:
        await clock.sleep_until(T0 + timedelta(hours=hours))
        woke.append((name, clock()))

    tasks = [asyncio.create_task(sleeper(n, h)) for n, h in (("late", 5), ("early", 1))]
    await asyncio.sleep(0)
    assert clock.next_wakeup() == T0 + timedelta(hours=1)
    clock.advance(timedelta(minutes=30))
    await asyncio.sleep(0)
    assert woke == [] and clock() == T0 + timedelta(minutes=30)

    clock.advance_to(T0 + timedelta(hours=6))
    await asyncio.gather(*tasks)
    assert [name for name, _ in woke] == ["early", "late"]
    assert clock.next_wakeup() is None


async def test_a_cancelled_sleeper_is_not_a_wakeup():
    clock = VirtualClock(T0)
    task = asyncio.create_task(clock.sleep_until(T0 + timedelta(hours=2)))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    assert clock.next_wakeup() is None


async def test_sleep_for_uses_the_clock_time_and_a_past_moment_returns_at_once():
    clock = VirtualClock(T0)
    task = asyncio.create_task(sleep_for(clock, 300))
    await asyncio.sleep(0)
    assert clock.next_wakeup() == T0 + timedelta(seconds=300)
    clock.advance(timedelta(seconds=300))
    await asyncio.wait_for(task, 1)
    await asyncio.wait_for(clock.sleep_until(T0), 1)


async def test_a_plain_now_callable_sleeps_in_real_time():
    fixed = lambda: T0  # noqa: E731 - what tests pass as a clock that only tells the time
    await asyncio.wait_for(sleep_for(fixed, 0.01), 1)


def test_the_clock_never_goes_back_and_refuses_naive_times():
    clock = VirtualClock(T0)
    listened: list[datetime] = []
    clock.on_advance(listened.append)
    clock.advance(timedelta(hours=1))
    assert listened == [T0 + timedelta(hours=1)]
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance_to(T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(datetime(2025, 1, 1))


def test_the_system_clock_is_aware_utc():
    assert system_clock().tzinfo is UTC

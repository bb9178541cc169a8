"""The scoring pool with real spawned processes: deaths, deadlines, cancellation, parent death."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gaia.tasks.defined_tasks.weather.pipeline.scoring_pool import (
    SCORING_NICENESS,
    DeadlinePassed,
    ProcessDied,
    ScoringPool,
)
from tests.fixtures import scoring_tasks as tasks

REPO = Path(__file__).resolve().parents[3]
FOREVER_S = 3600.0
"""How long a stuck task would run if nothing ended it."""


@pytest.fixture
def pool_of() -> Iterator[Callable[[int], ScoringPool]]:
    """Pools closed after the test, so no test leaves processes behind."""
    pools: list[ScoringPool] = []

    def make(processes: int) -> ScoringPool:
        pools.append(ScoringPool(processes))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


async def test_a_process_killed_mid_task_is_replaced_and_the_next_task_succeeds(pool_of):
    pool = pool_of(1)
    first = await pool.run(tasks.own_pid, deadline_s=None)

    with pytest.raises(ProcessDied, match="SIGKILL"):
        await pool.run(tasks.kill_self, deadline_s=None)

    second = await pool.run(tasks.own_pid, deadline_s=None)
    assert second != first
    assert not tasks.is_running(first)


async def test_a_process_that_died_idle_is_replaced_before_the_next_task(pool_of):
    pool = pool_of(1)
    idle = await pool.run(tasks.own_pid, deadline_s=None)
    os.kill(idle, signal.SIGKILL)
    assert tasks.wait_until_gone([idle])

    assert await pool.run(tasks.own_pid, deadline_s=None) != idle  # not ProcessDied


async def test_a_task_past_its_deadline_is_killed_and_the_next_task_runs_at_once(pool_of):
    pool = pool_of(1)
    stuck = asyncio.create_task(pool.run(tasks.sleep_then_pid, FOREVER_S, deadline_s=1.0))
    waiting = asyncio.create_task(pool.run(tasks.own_pid, deadline_s=None))

    with pytest.raises(DeadlinePassed):
        await stuck
    # One process: the next task could only run once the stuck one was gone, and it ran
    # long before the stuck one would have finished.
    pid = await asyncio.wait_for(waiting, FOREVER_S / 10)
    assert tasks.is_running(pid)


async def test_a_cancelled_task_does_not_keep_its_process(pool_of):
    """A job timeout cancels the await; the task must not run on in front of the next one."""
    pool = pool_of(1)
    old = await pool.run(tasks.own_pid, deadline_s=None)
    busy = asyncio.create_task(pool.run(tasks.sleep_then_pid, FOREVER_S, deadline_s=None))
    await asyncio.sleep(0.2)  # let it hand the task over
    busy.cancel()
    with pytest.raises(asyncio.CancelledError):
        await busy

    assert not tasks.is_running(old)
    assert await asyncio.wait_for(pool.run(tasks.own_pid, deadline_s=None), FOREVER_S / 10) != old


async def test_a_dead_process_does_not_fail_the_tasks_on_other_processes(pool_of, tmp_path):
    pool = pool_of(2)
    marker = tmp_path / "go"
    survivor = asyncio.create_task(pool.run(tasks.pid_when, marker, deadline_s=None))

    with pytest.raises(ProcessDied):
        await pool.run(tasks.kill_self, deadline_s=None)
    marker.touch()

    assert tasks.is_running(await survivor)
    # both slots work again: the survivor's and the replaced one
    pids = await asyncio.gather(*(pool.run(tasks.sleep_then_pid, 0.5, deadline_s=None)
                                  for _ in range(2)))
    assert len(set(pids)) == 2


async def test_a_task_error_comes_back_as_itself_with_the_remote_traceback(pool_of):
    pool = pool_of(1)
    with pytest.raises(ValueError, match="bad chunk") as raised:
        await pool.run(tasks.raise_value_error, "bad chunk", deadline_s=None)
    assert any("raise_value_error" in note for note in raised.value.__notes__)
    assert await pool.run(tasks.own_pid, deadline_s=None) > 0  # the process survived


async def test_scoring_runs_below_the_worker_s_priority(pool_of):
    pool = pool_of(1)
    assert await pool.run(tasks.niceness, deadline_s=None) == min(os.nice(0) + SCORING_NICENESS, 19)


async def test_close_ends_every_process(pool_of):
    pool = pool_of(2)
    pids = await asyncio.gather(*(pool.run(tasks.sleep_then_pid, 0.3, deadline_s=None)
                                  for _ in range(2)))
    pool.close()
    assert not any(tasks.is_running(pid) for pid in pids)


def test_the_processes_exit_when_the_parent_is_sigkilled():
    holder = subprocess.Popen([sys.executable, "-m", "tests.fixtures.scoring_tasks", "2"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        children = [int(pid) for pid in holder.stdout.readline().split()]
        assert len(children) == 2 and all(tasks.is_running(pid) for pid in children)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert tasks.wait_until_gone(children)
    finally:
        holder.kill()
        holder.wait()

"""Running one scoring task under its deadline: on the pool, or in the worker itself.

A scoring process that dies under a task (what the OOM killer does to a decompression
bomb) is replaced and the task run once more, in the same call, on the fresh process; a
forecast whose task kills its process twice is ``Invalid``. The count lives in the call
rather than in a job attempt or a per-forecast table: it needs no state shared between
attempts or worker processes, and a forecast cannot spend a job attempt to reset it. Both
tries share the one deadline; past it the task is ``TimedOut``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from gaia.jobs.outcomes import Invalid, TimedOut
from gaia.tasks.defined_tasks.weather.pipeline.scoring_outcomes import as_outcomes
from gaia.tasks.defined_tasks.weather.pipeline.scoring_pool import (
    DeadlinePassed,
    ProcessDied,
    ScoringPool,
)

T = TypeVar("T")
log = logging.getLogger(__name__)


async def in_pool(
    pool: ScoringPool, task: Callable[..., T], *args: Any, timeout_s: float | None
) -> T:
    """``task(*args)`` on ``pool``, once more on a fresh process if its process died."""
    loop = asyncio.get_running_loop()
    ends_at = None if timeout_s is None else loop.time() + timeout_s
    try:
        return await _run_once(pool, task, args, ends_at, timeout_s)
    except ProcessDied as died:
        log.warning("%s; scoring once more on a fresh process", died)
    try:
        return await _run_once(pool, task, args, ends_at, timeout_s)
    except ProcessDied as died:
        raise Invalid(f"the forecast killed its scoring process twice: {died}") from died


async def _run_once(
    pool: ScoringPool, task: Callable[..., T], args: tuple[Any, ...], ends_at: float | None,
    timeout_s: float | None,
) -> T:
    left = None
    if timeout_s is not None and ends_at is not None:
        left = ends_at - asyncio.get_running_loop().time()
        if left <= 0:
            raise TimedOut(timeout_s)
    try:
        with as_outcomes():
            return await pool.run(task, *args, deadline_s=left)
    except DeadlinePassed as passed:
        raise TimedOut(passed.deadline_s if timeout_s is None else timeout_s) from passed


@contextlib.asynccontextmanager
async def in_process(timeout_s: float | None) -> AsyncIterator[None]:
    """Scoring in the worker itself: the deadline as a plain asyncio timeout."""
    try:
        async with asyncio.timeout(timeout_s):
            with as_outcomes():
                yield
    except TimeoutError as error:
        assert timeout_s is not None
        raise TimedOut(timeout_s) from error

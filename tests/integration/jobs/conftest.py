"""Helpers for the job queue's integration tests (real PostgreSQL, real worker processes)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.jobs.worker_proc import SIDE_TABLES

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def side_tables(engine: AsyncEngine) -> AsyncIterator[None]:
    """``job_starts`` and ``job_effects``, empty, for handlers to record what they did."""
    async with engine.begin() as conn:
        for statement in SIDE_TABLES:
            await conn.execute(text(statement))
        await conn.execute(text("TRUNCATE job_starts, job_effects"))
    yield


@pytest.fixture
def spawn_worker(database_url: str) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``worker_proc`` subprocesses; any still alive at the end are killed."""
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(*args: str) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "tests.integration.jobs.worker_proc", database_url, *args]
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT)
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


async def wait_for(
    engine: AsyncEngine, query: str, predicate: Callable[[Any], bool], timeout_s: float = 60.0
) -> Any:
    """Poll ``query`` (one scalar) until ``predicate`` holds; fail after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        async with engine.connect() as conn:
            value = (await conn.execute(text(query))).scalar()
        if predicate(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting: {query!r} last returned {value!r}")
        await asyncio.sleep(0.05)


async def wait_exit(proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while proc.poll() is None:
        if loop.time() > deadline:
            raise AssertionError(f"worker {proc.pid} did not exit within {timeout_s} s")
        await asyncio.sleep(0.05)
    return proc.returncode

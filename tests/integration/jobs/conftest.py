"""Helpers for the job queue's integration tests (real PostgreSQL, real worker processes)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.jobs.worker_proc import SIDE_TABLES

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def side_tables(engine: AsyncEngine) -> AsyncIterator[None]:
    """``job_starts`` and ``job_effects``, new, for handlers to record what they did; dropped
    after the test, so neither outlives it."""
    async with engine.begin() as conn:
        for statement in SIDE_TABLES:
            await conn.execute(text(statement))
    yield
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE job_starts, job_effects"))


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

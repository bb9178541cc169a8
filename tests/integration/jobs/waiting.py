"""Polling helpers for tests that wait on other processes or a running worker."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


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

"""One HTTP request, retried through transport errors and 5xx answers with backoff."""

from __future__ import annotations

import asyncio
import contextlib

import httpx


class RetriesExhausted(Exception):
    """Every attempt failed with a transport error or a 5xx; the message is the last one."""


async def request_with_retries(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    retries: int,
    backoff_s: float,
    limiter: asyncio.Semaphore | None = None,
) -> httpx.Response:
    """The first answer below 500 (4xx included: callers decide what a 404 means).

    Timeouts, connection errors and 5xx are tried ``retries`` more times, waiting
    ``backoff_s · 2^attempt`` between tries (outside ``limiter``, which bounds only the
    requests in flight); then :class:`RetriesExhausted`.
    """
    last = ""
    for attempt in range(retries + 1):
        try:
            async with limiter or contextlib.nullcontext():
                response = await client.request(method, url, headers=headers)
        except httpx.TransportError as exc:  # timeouts, connection and protocol errors
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code < 500:
                return response
            last = f"HTTP {response.status_code}"
        if attempt < retries:
            await asyncio.sleep(backoff_s * 2**attempt)
    raise RetriesExhausted(last)

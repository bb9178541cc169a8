"""The project's one retry loop (:func:`retried`), and one HTTP request retried through
transport errors, 5xx answers and answers the caller rejects (a truncated body) on top of it.

The forecast reader's signed reads use :func:`retried` directly: what counts as worth
another try (a 429, a reset connection) and what ends the read at once (a 404, a body past
its size limit) is theirs to say; the loop and its accounting are shared."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

T = TypeVar("T")
RetryAnswer = Callable[[httpx.Response], str | None]
"""Why an answer below 500 is tried again (``"truncated body"``), or None to accept it."""
Attempt = Callable[[], Awaitable[tuple[T | None, str]]]
"""One try: ``(value, "")`` when it worked, ``(None, why)`` when it is worth another try;
anything that must not be retried it raises."""


class RetriesExhausted(Exception):
    """Every attempt failed; the message is the last failure and how many tries were made."""

    def __init__(self, last: str, tries: int):
        super().__init__(f"{last} after {tries} tries")
        self.last, self.tries = last, tries


async def retried(attempt: Attempt[T], *, tries: int, delay_s: Callable[[int], float]) -> T:
    """The value of the first of ``tries`` tries that gives one, waiting ``delay_s(k)``
    after the k-th failed try (k from 0); then :class:`RetriesExhausted` with the last why."""
    if tries < 1:
        raise ValueError(f"tries must be at least 1, got {tries}")
    why = ""
    for done in range(tries):
        if done:
            await asyncio.sleep(delay_s(done - 1))
        value, why = await attempt()
        if value is not None:
            return value
    raise RetriesExhausted(why, tries)


async def request_with_retries(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    retries: int,
    backoff_s: float,
    limiter: asyncio.Semaphore | None = None,
    retry_answer: RetryAnswer | None = None,
) -> httpx.Response:
    """The first answer below 500 that ``retry_answer`` accepts (4xx included: callers
    decide what a 404 means).

    Timeouts, connection errors, 5xx and rejected answers are tried ``retries`` more times,
    waiting ``backoff_s · 2^attempt`` between tries (outside ``limiter``, which bounds only
    the requests in flight); then :class:`RetriesExhausted`.
    """
    async def once() -> tuple[httpx.Response | None, str]:
        try:
            async with limiter or contextlib.nullcontext():
                response = await client.request(method, url, headers=headers)
        except httpx.TransportError as exc:  # timeouts, connection and protocol errors
            return None, f"{type(exc).__name__}: {exc}"
        if response.status_code >= 500:
            return None, f"HTTP {response.status_code}"
        rejected = retry_answer(response) if retry_answer else None
        return (response, "") if rejected is None else (None, rejected)

    return await retried(once, tries=retries + 1, delay_s=lambda k: backoff_s * 2**k)

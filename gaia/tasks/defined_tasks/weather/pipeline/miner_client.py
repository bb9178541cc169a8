"""The validator's side of the miner protocol: signed requests, validated answers.

What a call's failure becomes (``as_outcomes`` turns the exceptions into job outcomes):

- no answer within the call's timeout → :class:`MinerTimedOut` → ``TimedOut``;
- refused connection, reset or another transport error, HTTP 5xx → :class:`MinerUnreachable`
  → ``Retry``;
- HTTP 401, 403, 429 → :class:`MinerRefused` → ``Retry``: clock skew, a miner whose
  metagraph cache has not yet seen this validator's permit, a rate limit; all may pass;
- any other 4xx (404 unknown job, 422 cycle refused, 413 …) → :class:`MinerProtocolError`
  → ``Invalid`` (failed at once);
- an answer larger than ``MAX_ANSWER_BYTES`` (whatever its status; reading stops at the
  cap, so a huge answer costs the validator no memory), or a 2xx answer that is malformed or
  names another job → ``Invalid``.

``Retry`` waits the job policy's backoff and records the reason (for a refusal: the status
code and the start of the miner's error text). ``TimedOut`` is a ``Retry`` whose next
attempt gets the job's doubled timeout; the call's timeout is the caller's (derived from
the job's current timeout), not the HTTP client's default.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from gaia.jobs.outcomes import Invalid, Retry, TimedOut
from gaia.net.signed_http import ResponseTooLarge, SignedClient
from gaia.tasks.defined_tasks.weather.protocol import (
    INITIATE_FETCH_PATH,
    InitiateFetchRequest,
    InitiateFetchResponse,
    JobStatusResponse,
    job_status_path,
)

MAX_ANSWER_BYTES = 64 * 1024
MAX_REASON_CHARS = 300
RETRIED_REFUSALS = frozenset({401, 403, 429})
M = TypeVar("M", bound=BaseModel)


class MinerUnreachable(Exception):
    """The miner could not be reached or answered with a transient error."""


class MinerTimedOut(MinerUnreachable):
    """The miner did not answer within the call's timeout."""

    def __init__(self, call: str, timeout_s: float) -> None:
        super().__init__(f"{call}: no answer within {timeout_s:g} s")
        self.call = call
        self.timeout_s = timeout_s


class MinerRefused(MinerUnreachable):
    """The miner refused a signed call in a way that may pass (401, 403, 429)."""


class MinerProtocolError(Exception):
    """The miner answered, but not as the protocol requires."""


class MinerCallTimedOut(TimedOut):
    """``TimedOut`` of a miner call: its reason names the call; ``delay`` as for ``Retry``."""

    def __init__(self, error: MinerTimedOut, delay: float | None = None) -> None:
        super().__init__(error.timeout_s)
        self.error = error
        self.reason = str(error)
        self.args = (self.reason,)
        self.delay = delay


def retry_after(failure: Retry, delay_s: float) -> Retry:
    """``failure`` retried after ``delay_s`` instead of the policy's backoff; a timeout stays
    a ``TimedOut``, so the next attempt still gets the longer timeout."""
    if isinstance(failure, MinerCallTimedOut):
        return MinerCallTimedOut(failure.error, delay=delay_s)
    return Retry(failure.reason, delay=delay_s)


@contextlib.contextmanager
def as_outcomes() -> Iterator[None]:
    """Timed out → ``TimedOut``; unreachable or refused → ``Retry``; a protocol breach →
    ``Invalid`` (failed at once)."""
    try:
        yield
    except MinerTimedOut as error:
        raise MinerCallTimedOut(error) from error
    except MinerUnreachable as error:
        raise Retry(str(error)) from error
    except MinerProtocolError as error:
        raise Invalid(str(error)) from error


class MinerClient:
    def __init__(self, client: SignedClient) -> None:
        self._client = client

    async def initiate_fetch(
        self, base_url: str, hotkey: str, init_time: datetime, *, timeout_s: float
    ) -> InitiateFetchResponse:
        request = InitiateFetchRequest(gfs_init_time=init_time, expected_miner_hotkey=hotkey)
        body = request.model_dump(mode="json")
        answer = await self._send("POST", base_url + INITIATE_FETCH_PATH, hotkey, body, timeout_s)
        return _parse(answer, InitiateFetchResponse)

    async def job_status(
        self, base_url: str, hotkey: str, job_id: str, *, timeout_s: float
    ) -> JobStatusResponse:
        answer = await self._send("GET", base_url + job_status_path(job_id), hotkey, None,
                                  timeout_s)
        status = _parse(answer, JobStatusResponse)
        if status.job_id != job_id:
            raise MinerProtocolError(f"asked for job {job_id}, the miner answered {status.job_id}")
        return status

    async def _send(
        self, method: str, url: str, hotkey: str, body: object, timeout_s: float
    ) -> _Answer:
        """One signed call bounded by ``timeout_s`` in all (the request's own HTTP timeout too,
        so the client's default never caps it), its answer read up to ``MAX_ANSWER_BYTES``."""
        call = f"{method} {url}"
        try:
            async with asyncio.timeout(timeout_s):
                response, content = await self._client.request_limited(
                    method, url, hotkey, json=body, timeout_s=timeout_s,
                    max_bytes=MAX_ANSWER_BYTES,
                )
        except ResponseTooLarge as error:
            raise MinerProtocolError(f"{call}: answer larger than {MAX_ANSWER_BYTES} bytes") from error
        except (httpx.TimeoutException, TimeoutError) as error:
            raise MinerTimedOut(call, timeout_s) from error
        except httpx.TransportError as error:
            raise MinerUnreachable(f"{call}: {type(error).__name__}: {error}") from error
        answer = _Answer(call, response.status_code, content)
        _check_status(answer)
        return answer


@dataclass(frozen=True)
class _Answer:
    call: str
    status_code: int
    content: bytes

    def text(self, limit: int) -> str:
        return self.content[:limit].decode("utf-8", errors="replace")


def _check_status(answer: _Answer) -> None:
    code, call = answer.status_code, answer.call
    if code >= 500:
        raise MinerUnreachable(f"{call}: HTTP {code}")
    if code in RETRIED_REFUSALS:
        raise MinerRefused(f"{call} refused: HTTP {code} {answer.text(MAX_REASON_CHARS)}")
    if code >= 400:
        raise MinerProtocolError(f"{call} refused: HTTP {code} {answer.text(MAX_REASON_CHARS)}")


def _parse(answer: _Answer, model: type[M]) -> M:
    try:
        return model.model_validate_json(answer.content)
    except ValidationError as error:
        raise MinerProtocolError(
            f"malformed answer from {answer.call}: {error.errors()[0]['msg']}"
            f" in {answer.text(200)!r}"
        ) from error

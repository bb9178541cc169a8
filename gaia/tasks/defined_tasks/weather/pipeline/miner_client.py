"""The validator's side of the miner protocol: signed requests, validated answers.

Transport trouble (refused connection, timeout, 5xx, 429) is :class:`MinerUnreachable`, which
the steps turn into ``Retry``; an answer that breaks the protocol (4xx, malformed JSON, a
different job) is :class:`MinerProtocolError`, which they turn into ``Invalid``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from gaia.jobs.outcomes import Invalid, Retry
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.protocol import (
    INITIATE_FETCH_PATH,
    InitiateFetchRequest,
    InitiateFetchResponse,
    JobStatusResponse,
    job_status_path,
)

MAX_ANSWER_BYTES = 64 * 1024
M = TypeVar("M", bound=BaseModel)


class MinerUnreachable(Exception):
    """The miner could not be reached or answered with a transient error."""


class MinerProtocolError(Exception):
    """The miner answered, but not as the protocol requires."""


@contextlib.contextmanager
def as_outcomes() -> Iterator[None]:
    """Unreachable → ``Retry``; a protocol breach → ``Invalid`` (failed at once)."""
    try:
        yield
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
        response = await self._send("POST", base_url + INITIATE_FETCH_PATH, hotkey, body, timeout_s)
        return _parse(response, InitiateFetchResponse)

    async def job_status(
        self, base_url: str, hotkey: str, job_id: str, *, timeout_s: float
    ) -> JobStatusResponse:
        response = await self._send("GET", base_url + job_status_path(job_id), hotkey, None,
                                    timeout_s)
        status = _parse(response, JobStatusResponse)
        if status.job_id != job_id:
            raise MinerProtocolError(f"asked for job {job_id}, the miner answered {status.job_id}")
        return status

    async def _send(
        self, method: str, url: str, hotkey: str, body: object, timeout_s: float
    ) -> httpx.Response:
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._client.request(method, url, hotkey, json=body)
        except (httpx.TransportError, TimeoutError) as error:
            raise MinerUnreachable(f"{method} {url}: {type(error).__name__}: {error}") from error
        if response.status_code >= 500 or response.status_code == 429:
            raise MinerUnreachable(f"{method} {url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise MinerProtocolError(
                f"{method} {url} refused: HTTP {response.status_code} {response.text[:300]}"
            )
        if len(response.content) > MAX_ANSWER_BYTES:
            raise MinerProtocolError(f"{method} {url}: answer larger than {MAX_ANSWER_BYTES} bytes")
        return response


def _parse(response: httpx.Response, model: type[M]) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as error:
        raise MinerProtocolError(
            f"malformed answer from {response.request.url}: {error.errors()[0]['msg']}"
            f" in {response.text[:200]!r}"
        ) from error

"""The one HTTP retry loop against a real loopback server: what it retries, what it returns,
what it says when every try failed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gaia.net.retrying import RetriesExhausted, request_with_retries
from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer

BODY = bytes(range(256)) * 4


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ArchiveServer]:
    (tmp_path / "file.bin").write_bytes(BODY)
    with ArchiveServer(tmp_path) as served:
        yield served


def short(response: httpx.Response) -> str | None:
    return "truncated body" if len(response.content) < len(BODY) else None


async def get(server: ArchiveServer, path: str = "file.bin", **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await request_with_retries(client, "GET", f"{server.url}/{path}", retries=2,
                                          backoff_s=0.01, **kwargs)  # type: ignore[arg-type]


async def test_5xx_is_retried_and_a_4xx_is_returned_to_the_caller(server: ArchiveServer) -> None:
    server.fail_next(2, status=503)
    assert (await get(server)).content == BODY
    assert [r.status for r in server.requests] == [503, 503, 200]
    assert (await get(server, "absent.bin")).status_code == 404
    assert len(server.requests) == 4  # the 404 was not retried


async def test_an_answer_the_caller_rejects_is_retried(server: ArchiveServer) -> None:
    server.truncate_next(1)
    assert (await get(server, retry_answer=short)).content == BODY
    assert len(server.requests) == 2


async def test_without_a_check_a_truncated_answer_is_returned(server: ArchiveServer) -> None:
    server.truncate_next(1)
    assert len((await get(server)).content) < len(BODY)


async def test_exhausted_names_the_last_failure_and_the_tries(server: ArchiveServer) -> None:
    server.truncate_next(2)
    server.fail_next(1, status=502)
    with pytest.raises(RetriesExhausted, match="^truncated body after 3 tries$") as caught:
        await get(server, retry_answer=short)
    assert (caught.value.last, caught.value.tries) == ("truncated body", 3)


async def test_a_refused_connection_is_retried_then_exhausted(tmp_path: Path) -> None:
    with ArchiveServer(tmp_path) as gone:
        url = gone.url
    async with httpx.AsyncClient(timeout=5) as client:
        with pytest.raises(RetriesExhausted, match=r"^ConnectError: .* after 2 tries$"):
            await request_with_retries(client, "GET", url, retries=1, backoff_s=0.01)

"""A small HTTP listener for ``GET /metrics`` and ``GET /healthz`` on the process's own loop.

Neither prometheus_client's ``start_http_server`` nor uvicorn fits: the former serves from
a thread, away from the event loop that owns the database engine the replies read at scrape
time; uvicorn's ``Server.serve`` installs its own SIGTERM/SIGINT handlers, which would take
the signals from the validator's graceful shutdown. So this is ``asyncio.start_server``
with one request per connection: a request head of at most ``MAX_HEAD_BYTES`` read within
``READ_TIMEOUT_S``, any body ignored, ``Connection: close`` on every reply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 8192
READ_TIMEOUT_S = 5.0


class ListenerUnavailable(RuntimeError):
    """The listener's address cannot be bound (taken, or not this host's); says which."""


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes

    def encode(self, *, with_body: bool = True) -> bytes:
        reason = HTTPStatus(self.status).phrase
        head = (f"HTTP/1.1 {self.status} {reason}\r\nContent-Type: {self.content_type}\r\n"
                f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n")
        return head.encode("latin-1") + (self.body if with_body else b"")


Route = Callable[[], Awaitable[Reply]]


def _plain(status: int, text: str) -> Reply:
    return Reply(status, "text/plain; charset=utf-8", text.encode())


class Listener:
    """Serves ``routes`` (path -> reply) on ``host``:``port`` while entered; port 0 picks a
    free one (:attr:`port` tells which)."""

    def __init__(self, host: str, port: int, routes: Mapping[str, Route]) -> None:
        self._host = host
        self._requested_port = port
        self._routes = dict(routes)
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the listener is not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> Listener:
        try:
            self._server = await asyncio.start_server(
                self._serve, self._host, self._requested_port, limit=MAX_HEAD_BYTES
            )
        except OSError as error:
            raise ListenerUnavailable(
                f"--metrics.host {self._host} --metrics.port {self._requested_port}: cannot "
                f"listen: {error.strerror or error}"
            ) from error
        log.info("metrics and health on http://%s:%d (/metrics, /healthz)", self._host, self.port)
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            method, reply = await self._answer(head)
            writer.write(reply.encode(with_body=method != "HEAD"))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass  # a client that sent no whole request, or left: nothing is owed
        finally:
            writer.close()

    async def _answer(self, head: bytes) -> tuple[str, Reply]:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return "GET", _plain(400, "bad request line\n")
        method, target = parts[0], parts[1]
        route = self._routes.get(target.split("?", 1)[0])
        if route is None:
            return method, _plain(404, f"not found; try {', '.join(sorted(self._routes))}\n")
        if method not in ("GET", "HEAD"):
            return method, _plain(405, "only GET and HEAD\n")
        return method, await route()

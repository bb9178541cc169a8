"""A loopback HTTP server for a local archive: GET/HEAD with Range, counters, faults.

``ArchiveServer(root).start()`` runs uvicorn in a background thread with its own event
loop, so it works from sync code and from any asyncio loop. Tests read ``requests`` and
``bytes_sent`` and switch faults on: ``latency_s``, ``fail_next(n)`` (5xx for the next n
requests) and ``truncate_next(n)`` (the next n bodies cut in half, headers consistent, as
a broken proxy would send them). ``rewrite`` (``(path, body) -> body``) changes what a whole
file GET returns: a simulation publishes ERA5 behind its clock by rewriting the store's
metadata.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True)
class ServedRequest:
    """What the server saw: method, path and Range header (None without one)."""

    method: str
    path: str
    range: str | None
    status: int


class RangeNotSatisfiable(ValueError):
    """A Range header this server cannot honour."""


def parse_range(header: str, size: int) -> tuple[int, int]:
    """Parse one ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range into [start, end)."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec or "-" not in spec:
        raise RangeNotSatisfiable(f"unsupported Range {header!r}")
    first, _, last = spec.strip().partition("-")
    if not first:
        start, end = max(0, size - int(last)), size
    else:
        start = int(first)
        end = size if not last else min(size, int(last) + 1)
    if start >= size or end <= start:
        raise RangeNotSatisfiable(f"Range {header!r} outside a {size}-byte file")
    return start, end


class ArchiveServer:
    """Serve ``root`` on 127.0.0.1 (port 0 picks a free port); ``url`` is its base URL."""

    def __init__(self, root: Path, port: int = 0):
        self.root = Path(root).resolve()
        self._port = port
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self.latency_s = 0.0
        self._fail_left = 0
        self._fail_status = 503
        self._truncate_left = 0
        self.requests: list[ServedRequest] = []
        self.bytes_sent = 0
        self.rewrite: Callable[[str, bytes], bytes] | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> ArchiveServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "HEAD"])])
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True,
            name=f"archive-server-{self._port}",
        )
        self._thread.start()
        while not server.started and self._thread.is_alive():
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError(f"archive server on port {self._port} failed to start")
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> ArchiveServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- test switches ------------------------------------------------------------------
    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._fail_left, self._fail_status = count, status

    def truncate_next(self, count: int) -> None:
        with self._lock:
            self._truncate_left = count

    def reset(self) -> None:
        """Clear counters and faults."""
        with self._lock:
            self.requests, self.bytes_sent = [], 0
            self._fail_left = self._truncate_left = 0
            self.latency_s = 0.0

    def count_requests(self, suffix: str) -> int:
        """Requests so far whose path ends with ``suffix`` (e.g. ".idx")."""
        with self._lock:
            return sum(1 for r in self.requests if r.path.endswith(suffix))

    # -- handler ------------------------------------------------------------------------
    def _take_fault(self) -> tuple[int | None, bool]:
        with self._lock:
            if self._fail_left > 0:
                self._fail_left -= 1
                return self._fail_status, False
            if self._truncate_left > 0:
                self._truncate_left -= 1
                return None, True
            return None, False

    def _record(self, request: Request, status: int, nbytes: int) -> None:
        with self._lock:
            self.requests.append(ServedRequest(
                request.method, request.url.path, request.headers.get("range"), status))
            self.bytes_sent += nbytes

    def _resolve(self, rel: str) -> Path | None:
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path

    async def _handle(self, request: Request) -> Response:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        fail_status, truncate = self._take_fault()
        path = self._resolve(request.path_params["path"])
        if fail_status is not None or path is None:
            status = fail_status or 404
            self._record(request, status, 0)
            return Response(b"injected failure" if fail_status else b"not found", status)
        return await asyncio.to_thread(self._file_response, request, path, truncate)

    def _file_response(self, request: Request, path: Path, truncate: bool) -> Response:
        size = path.stat().st_size
        headers = {"accept-ranges": "bytes"}
        start, end, status = 0, size, 200
        if (header := request.headers.get("range")) is not None:
            try:
                start, end = parse_range(header, size)
            except RangeNotSatisfiable:
                self._record(request, 416, 0)
                return Response(b"", 416, headers={"content-range": f"bytes */{size}"})
            status = 206
            headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
        if truncate:
            end = start + (end - start) // 2
        if request.method == "HEAD":
            self._record(request, status, 0)
            return Response(b"", status, headers={**headers, "content-length": str(end - start)})
        with open(path, "rb") as stream:
            body = os.pread(stream.fileno(), end - start, start)
        if self.rewrite is not None and status == 200 and not truncate:
            body = self.rewrite(path.relative_to(self.root).as_posix(), body)
        self._record(request, status, len(body))
        return Response(body, status, headers=headers)

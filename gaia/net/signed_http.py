"""An httpx client whose every request is signed with ``bittensor.http_auth`` (btauth/1).

The signature binds the method, the request target exactly as sent (path and query),
the sha256 of the body, a fresh nonce and the receiving hotkey. Each call signs anew,
so a retry never replays a nonce.

An ``httpx.AsyncClient`` belongs to the event loop that first uses it; code that may run
in another loop (zarr's I/O thread) calls ``for_running_loop()``, which returns this
client or a sibling with the same signer and settings and its own connection pool
(one per loop, closed with this client).

``timeout`` given to the constructor is every request's default; ``request(timeout_s=…)``
replaces it for one request (a caller whose own deadline grows, like a job whose timeout
doubles after each timeout, is not capped by the client's default).

``request_limited`` is for answers from parties that may be hostile: the body is read as a
stream and reading stops at a byte cap, and an optional deadline bounds the whole exchange
(when it expires the transfer itself is cancelled and its connection closed, not only the
caller's await).
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from types import TracebackType
from typing import Any, Self

import httpx
from bittensor import http_auth
from bittensor.signing import WalletLike, resolve_signer


class ResponseTooLarge(httpx.HTTPError):
    """A response body exceeded the size the caller allowed."""


class ResponseTooSlow(httpx.HTTPError):
    """The answer was not complete within the caller's deadline (the transfer was stopped)."""


class SignedClient:
    """Signs every request with ``signer``'s hotkey for the given receiver hotkey."""

    def __init__(
        self,
        signer: WalletLike,
        *,
        timeout: float | httpx.Timeout,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        self.signer = resolve_signer(signer, role="hotkey")
        self.timeout = timeout
        self._transport = transport
        self._limits = limits or httpx.Limits(max_connections=32, max_keepalive_connections=16)
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport, limits=self._limits)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._siblings: dict[asyncio.AbstractEventLoop, SignedClient] = {}

    @property
    def hotkey(self) -> str:
        return self.signer.ss58_address

    @property
    def bound_loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop this client's connections belong to (None before first use)."""
        return self._loop

    def for_running_loop(self) -> SignedClient:
        """This client if it belongs to the running loop (or to none yet), else that loop's
        sibling: same signer and settings, its own connection pool."""
        loop = asyncio.get_running_loop()
        if self._loop is None or self._loop is loop:
            return self
        sibling = self._siblings.get(loop)
        if sibling is None:
            sibling = SignedClient(
                self.signer, timeout=self.timeout, transport=self._transport, limits=self._limits
            )
            self._siblings[loop] = sibling
        return sibling

    def bind_to_running_loop(self) -> None:
        """Tie this client to the running loop (done by the first request anyway)."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("SignedClient used from a second event loop; use for_running_loop()")

    def _build(
        self, method: str, url: str, receiver_hotkey: str, json: Any, content: bytes | None,
        headers: dict[str, str] | None, timeout_s: float | httpx.Timeout | None = None,
    ) -> httpx.Request:
        if json is not None and content is not None:
            raise ValueError("pass json or content, not both")
        all_headers = dict(headers or {})
        body = content if content is not None else b""
        if json is not None:
            body = jsonlib.dumps(json, separators=(",", ":")).encode("utf-8")
            all_headers.setdefault("Content-Type", "application/json")
        request = self._client.build_request(
            method, url, content=body, headers=all_headers,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout_s is None else timeout_s,
        )
        target = request.url.raw_path.decode("ascii")
        request.headers.update(http_auth.sign(
            self.signer, method=method, path=target, body=body, receiver_ss58=receiver_hotkey,
        ))
        return request

    async def request(
        self,
        method: str,
        url: str,
        receiver_hotkey: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        """Send one signed request and read the whole response; ``timeout_s`` (for each of
        connect, write, read and pool) replaces the client's timeout for this request."""
        self.bind_to_running_loop()
        request = self._build(method, url, receiver_hotkey, json, content, headers, timeout_s)
        return await self._client.send(request)

    async def get(self, url: str, receiver_hotkey: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, receiver_hotkey, **kwargs)

    async def post(self, url: str, receiver_hotkey: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, receiver_hotkey, **kwargs)

    async def get_limited(
        self, url: str, receiver_hotkey: str, *, max_bytes: int, **kwargs: Any
    ) -> tuple[httpx.Response, bytes]:
        return await self.request_limited("GET", url, receiver_hotkey, max_bytes=max_bytes, **kwargs)

    async def request_limited(
        self,
        method: str,
        url: str,
        receiver_hotkey: str,
        *,
        max_bytes: int,
        json: Any = None,
        timeout_s: float | httpx.Timeout | None = None,
        deadline_s: float | None = None,
    ) -> tuple[httpx.Response, bytes]:
        """One signed request whose body is streamed: ``ResponseTooLarge`` as soon as more
        than ``max_bytes`` arrive, ``ResponseTooSlow`` when the whole exchange (connection,
        headers and body) outlasts ``deadline_s``; either way the connection is closed."""
        self.bind_to_running_loop()
        request = self._build(method, url, receiver_hotkey, json, None, None, timeout_s)
        try:
            async with asyncio.timeout(deadline_s):
                return await self._read_capped(request, max_bytes)
        except TimeoutError as error:
            raise ResponseTooSlow(f"{url} was not answered within {deadline_s:g} s") from error

    async def _read_capped(
        self, request: httpx.Request, max_bytes: int
    ) -> tuple[httpx.Response, bytes]:
        response = await self._client.send(request, stream=True)
        try:
            chunks, total = [], 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise ResponseTooLarge(f"{request.url} sent more than {max_bytes} bytes")
                chunks.append(chunk)
        finally:
            await response.aclose()
        return response, b"".join(chunks)

    async def aclose(self) -> None:
        """Close this client and the siblings it made for other (still running) loops."""
        current = asyncio.get_running_loop()
        for loop, sibling in self._siblings.items():
            if loop is current:
                await sibling.aclose()
            elif loop.is_running():
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(sibling.aclose(), loop))
        self._siblings.clear()
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

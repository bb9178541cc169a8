"""A small read-only zarr Store over HTTPS with httpx (no fsspec/aiohttp needed).

Keys map to ``<url>/<key>``; 404 means "no such key" (a missing chunk reads as the fill
value, as zarr expects); 5xx and transport errors are retried, then raised as
``ZarrHttpError``. Byte ranges use HTTP Range. Listing is not supported (stores are read
through their consolidated metadata).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import zarr
from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype

from gaia.net.retrying import RetriesExhausted, request_with_retries


class ZarrHttpError(RuntimeError):
    """A zarr key could not be read over HTTP after retries."""


def _range_header(byte_range: ByteRequest | None) -> dict[str, str]:
    if byte_range is None:
        return {}
    if isinstance(byte_range, RangeByteRequest):
        return {"Range": f"bytes={byte_range.start}-{byte_range.end - 1}"}
    if isinstance(byte_range, OffsetByteRequest):
        return {"Range": f"bytes={byte_range.offset}-"}
    if isinstance(byte_range, SuffixByteRequest):
        return {"Range": f"bytes=-{byte_range.suffix}"}
    raise ValueError(f"unexpected byte range {byte_range!r}")


class HttpStore(Store):
    """Read-only zarr store rooted at ``url``."""

    supports_writes = False
    supports_deletes = False
    supports_partial_writes = False
    supports_listing = False

    def __init__(self, url: str, *, timeout_s: float = 30.0, max_retries: int = 3,
                 backoff_s: float = 0.5):
        super().__init__(read_only=True)
        self.url = url.rstrip("/")
        self._timeout = timeout_s
        self._retries = max_retries
        self._backoff = backoff_s
        self._clients: dict[int, httpx.AsyncClient] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HttpStore) and other.url == self.url

    def __repr__(self) -> str:
        return f"HttpStore({self.url!r})"

    def _client(self) -> httpx.AsyncClient:
        """One client per event loop (zarr runs its own loop in a thread)."""
        loop = id(asyncio.get_running_loop())
        if loop not in self._clients:
            self._clients[loop] = httpx.AsyncClient(timeout=self._timeout)
        return self._clients[loop]

    async def _fetch(self, method: str, key: str, headers: dict[str, str]) -> httpx.Response | None:
        url = f"{self.url}/{key}"
        try:
            response = await request_with_retries(
                self._client(), method, url, headers=headers, retries=self._retries,
                backoff_s=self._backoff,
            )
        except RetriesExhausted as exc:
            raise ZarrHttpError(f"{method} {url} failed: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise ZarrHttpError(f"{method} {url} failed: HTTP {response.status_code}")
        return response

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        response = await self._fetch("GET", key, _range_header(byte_range))
        if response is None:
            return None
        return prototype.buffer.from_bytes(response.content)

    async def get_partial_values(
        self, prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        return await self._fetch("HEAD", key, {}) is not None

    async def set(self, key: str, value: Buffer) -> None:
        raise PermissionError(f"{self!r} is read-only")

    async def delete(self, key: str) -> None:
        raise PermissionError(f"{self!r} is read-only")

    def list(self) -> AsyncIterator[str]:
        raise NotImplementedError("HttpStore cannot list; use consolidated metadata")

    def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        raise NotImplementedError("HttpStore cannot list; use consolidated metadata")

    def list_dir(self, prefix: str) -> AsyncIterator[str]:
        raise NotImplementedError("HttpStore cannot list; use consolidated metadata")


def read_root_attrs(url: str) -> dict[str, Any]:
    """A zarr v2 store's root attributes, read fresh: ``.zgroup`` and ``.zattrs`` only (two
    small requests through :class:`HttpStore`), where opening the store reads every array's
    metadata (megabytes for the ARCO ERA5 store). Over HTTP(S) or a local path."""
    store: object = HttpStore(url) if url.startswith(("http://", "https://")) else url
    group = zarr.open_group(store, mode="r", zarr_format=2, use_consolidated=False)
    return dict(group.attrs)

"""Connection limits of the miner's HTTP server, enforced below the app, before any request.

uvicorn has a keep-alive timeout but nothing that closes a connection whose request never
arrives, and no cap on open connections, so a few hundred half-open sockets from anyone
exhaust the miner's file descriptors. :class:`GuardedH11Protocol` adds, per connection:

- a cap on open connections, in all and per client address (IPv6: per /64, which one
  host usually holds whole); a connection over either is closed as soon as it is accepted;
- a read deadline: a client has ``request_read_timeout_s`` to send a whole request, headers
  and body, counted from the connection's start or from the first byte of a further request
  on a kept-alive connection; past it the connection is closed. Time spent answering is not
  counted, and uvicorn's keep-alive timeout closes connections idle between requests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    max_per_address: int
    request_read_timeout_s: float


def address_key(host: str) -> str:
    """The unit that per-address limits count: an IPv4 address, or an IPv6 /64."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a Unix socket or an unknown peer: one shared key
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class ConnectionRefusal(StrEnum):
    MAX_CONNECTIONS = "max_connections"
    MAX_PER_ADDRESS = "max_connections_per_address"
    READ_TIMEOUT = "request_read_timeout"


def _ignore(_refusal: ConnectionRefusal) -> None:
    return None


class ConnectionGuard:
    """Counts the server's open connections, in all and per address key; tells
    ``on_refused`` (the miner's metrics) of every connection it closes."""

    def __init__(
        self, limits: ConnectionLimits,
        on_refused: Callable[[ConnectionRefusal], None] = _ignore,
    ) -> None:
        self.limits = limits
        self.on_refused = on_refused
        self._open: Counter[str] = Counter()
        self._total = 0

    @property
    def open_connections(self) -> int:
        return self._total

    def admit(self, key: str) -> bool:
        """Count a new connection from ``key``; False (and nothing counted) when over a cap."""
        if self._total >= self.limits.max_connections:
            self.on_refused(ConnectionRefusal.MAX_CONNECTIONS)
            return False
        if self._open[key] >= self.limits.max_per_address:
            self.on_refused(ConnectionRefusal.MAX_PER_ADDRESS)
            return False
        self._open[key] += 1
        self._total += 1
        return True

    def release(self, key: str) -> None:
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]
        self._total -= 1


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the connection caps and the request read deadline."""

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard
        self._key: str | None = None  # set once admitted
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        key = address_key(self.client[0] if self.client else "")
        if not self._guard.admit(key):
            log.debug("refused a connection from %s: connection limit reached", key)
            transport.abort()  # frees the descriptor now; no response is owed
            return
        self._key = key
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        if self._key is not None:
            self._guard.release(self._key)
            self._key = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm_deadline()  # the first bytes of a further request on this connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._disarm_deadline()  # the request is read (or the connection is done)

    def _arm_deadline(self) -> None:
        self._disarm_deadline()
        self._deadline = self.loop.call_later(
            self._guard.limits.request_read_timeout_s, self._read_timed_out
        )

    def _disarm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_timed_out(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self._guard.on_refused(ConnectionRefusal.READ_TIMEOUT)
            log.debug("closed a connection from %s: request not read within %.0f s",
                      self._key, self._guard.limits.request_read_timeout_s)
            self.transport.abort()

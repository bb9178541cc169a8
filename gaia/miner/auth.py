"""Authentication of validator requests: ``bittensor.http_auth`` plus the caller's standing.

Order of checks, cheapest first: the client address's budget of refused requests (429),
so a stranger past it costs no signature check; the standing of the claimed hotkey (403),
public knowledge, read before any sr25519 verify so strangers never cost one (nor write to
the database); signature, receiver and freshness (401); replay against the nonce table
shared by every worker of the miner (401); the per-hotkey rate limit (429), after the replay
check so that a captured request replayed cannot spend a validator's budget. Every 401 or
403 counts against the client address. A refused request changes nothing but the nonce
table. API calls and forecast file reads are limited separately: reading one forecast takes
thousands of file requests.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from bittensor import http_auth

from gaia.clock import Now
from gaia.miner.database import MinerDatabase
from gaia.miner.errors import NotAValidator, RateLimited, Unauthenticated
from gaia.miner.validators import ValidatorRegistry

NONCE_RETENTION = timedelta(seconds=http_auth.DEFAULT_MAX_AGE + http_auth.DEFAULT_ALLOWED_SKEW + 60)


class _DeferredNonceStore:
    """Lets ``verify`` pass its replay step: the shared store is the (async) database.

    ``verify`` is synchronous; the caller's nonce is recorded, or found to be a replay,
    right after it returns, in :meth:`Authenticator.authenticate`.
    """

    def check_and_store(self, hotkey_ss58: str, nonce_ns: int) -> bool:
        return True


class RateLimiter:
    """At most ``per_minute`` requests per hotkey in any sliding 60 s window (per process)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def admit(self, hotkey: str) -> bool:
        now = self._clock()
        hits = self._hits.setdefault(hotkey, deque())
        while hits and hits[0] <= now - 60.0:
            hits.popleft()
        if len(hits) >= self._limit:
            return False
        hits.append(now)
        return True


class AddressLimiter:
    """At most ``per_minute`` refused requests per client address in each minute.

    Fixed one-minute windows keep one counter per address, so memory stays small under a
    flood from many addresses; past ``max_tracked`` addresses in one window the rest share
    one counter (a flood from many addresses is then limited as one).
    """

    OVERFLOW = "*"

    def __init__(
        self, per_minute: int, *, max_tracked: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = per_minute
        self._max_tracked = max_tracked
        self._clock = clock
        self._window = -1
        self._refused: dict[str, int] = {}

    def exhausted(self, address: str) -> bool:
        self._roll()
        return self._refused.get(self._slot(address), 0) >= self._limit

    def count(self, address: str) -> None:
        self._roll()
        slot = self._slot(address)
        self._refused[slot] = self._refused.get(slot, 0) + 1

    def _slot(self, address: str) -> str:
        if address in self._refused or len(self._refused) < self._max_tracked:
            return address
        return self.OVERFLOW

    def _roll(self) -> None:
        window = int(self._clock() // 60.0)
        if window != self._window:
            self._window = window
            self._refused = {}


class RateBucket(StrEnum):
    API = "api"
    FILES = "files"


@dataclass(frozen=True)
class SignedRequest:
    method: str
    target: str  # path plus "?query" exactly as sent
    client: str  # the peer's address key (gaia.miner.connections.address_key)
    headers: Mapping[str, str]
    body: bytes


class Authenticator:
    """Turns a signed request into the caller's hotkey, or raises a typed refusal."""

    def __init__(
        self,
        *,
        own_hotkey: str,
        db: MinerDatabase,
        registry: ValidatorRegistry,
        api_limiter: RateLimiter,
        file_limiter: RateLimiter,
        stranger_limiter: AddressLimiter,
        clock: Now,
    ) -> None:
        self._own_hotkey = own_hotkey
        self._db = db
        self._registry = registry
        self._limiters = {RateBucket.API: api_limiter, RateBucket.FILES: file_limiter}
        self._strangers = stranger_limiter
        self._clock = clock

    async def authenticate(self, request: SignedRequest, bucket: RateBucket) -> str:
        if self._strangers.exhausted(request.client):
            raise RateLimited(
                f"too many refused requests from {request.client}", headers={"Retry-After": "60"}
            )
        try:
            return await self._authenticated(request, bucket)
        except (Unauthenticated, NotAValidator):
            self._strangers.count(request.client)
            raise

    async def _authenticated(self, request: SignedRequest, bucket: RateBucket) -> str:
        claimed = request.headers.get(http_auth.HEADER_HOTKEY)
        if claimed is not None and (refusal := self._registry.refusal(claimed)) is not None:
            raise NotAValidator(refusal)
        caller = self._verified(request)
        # again on the verified hotkey: a request may carry the header twice, and verify
        # reads the last one
        if (refusal := self._registry.refusal(caller.hotkey_ss58)) is not None:
            raise NotAValidator(refusal)
        expires_at = self._clock() + NONCE_RETENTION
        if not await self._db.remember_nonce(caller.hotkey_ss58, caller.nonce_ns, expires_at):
            raise Unauthenticated(
                "ReplayedRequest: this nonce was already accepted from this hotkey"
            )
        if not self._limiters[bucket].admit(caller.hotkey_ss58):
            raise RateLimited(
                f"hotkey {caller.hotkey_ss58} exceeded its request rate",
                headers={"Retry-After": "60"},
            )
        return caller.hotkey_ss58

    def _verified(self, request: SignedRequest) -> http_auth.Caller:
        """Signature, receiver and freshness; the replay check is the database's."""
        try:
            return http_auth.verify(
                request.headers,
                request.body,
                method=request.method,
                path=request.target,
                self_hotkey_ss58=self._own_hotkey,
                nonce_store=_DeferredNonceStore(),
            )
        except http_auth.AuthError as exc:
            raise Unauthenticated(f"{type(exc).__name__}: {exc}") from exc

"""Authentication of validator requests: ``bittensor.http_auth`` plus the caller's standing.

Order of checks: signature, receiver and freshness (401); validator standing (403), so
strangers never write to the database; replay against the nonce table shared by every
worker of the miner (401); the per-hotkey rate limit (429), after the replay check so that
a captured request replayed cannot spend a validator's budget. A refused request changes
nothing but the nonce table. API calls and forecast file reads are limited separately:
reading one forecast takes thousands of file requests.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bittensor import http_auth

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


class RateBucket(StrEnum):
    API = "api"
    FILES = "files"


@dataclass(frozen=True)
class SignedRequest:
    method: str
    target: str  # path plus "?query" exactly as sent
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
        clock: Callable[[], datetime],
    ) -> None:
        self._own_hotkey = own_hotkey
        self._db = db
        self._registry = registry
        self._limiters = {RateBucket.API: api_limiter, RateBucket.FILES: file_limiter}
        self._clock = clock

    async def authenticate(self, request: SignedRequest, bucket: RateBucket) -> str:
        caller = self._verified(request)
        refusal = self._registry.refusal(caller.hotkey_ss58)
        if refusal is not None:
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

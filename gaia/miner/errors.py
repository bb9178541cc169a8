"""Typed refusals of the miner's HTTP API; one handler turns them into JSON ``ErrorResponse``."""

from __future__ import annotations

from typing import ClassVar


class MinerHTTPError(Exception):
    """A request the miner refuses; ``status_code`` and ``code`` go to the caller."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class Unauthenticated(MinerHTTPError):
    status_code = 401
    code = "unauthenticated"


class NotAValidator(MinerHTTPError):
    status_code = 403
    code = "forbidden"


class NotFound(MinerHTTPError):
    status_code = 404
    code = "not_found"


class WrongMiner(MinerHTTPError):
    status_code = 409
    code = "wrong_miner_hotkey"


class CycleOutsideWindow(MinerHTTPError):
    status_code = 422
    code = "cycle_outside_window"


class RateLimited(MinerHTTPError):
    status_code = 429
    code = "rate_limited"

"""Typed outcomes of a job handler.

A handler that returns has succeeded. Otherwise it raises one of these; the worker turns
each into the job's next state in exactly one place (:func:`gaia.jobs.policy.resolve`).
Any other exception counts as a :class:`Retry` whose reason is the traceback.
"""

from __future__ import annotations

from datetime import datetime


class JobOutcome(Exception):
    """Base class of the outcomes a handler may raise."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Retry(JobOutcome):
    """Transient failure: try again after the policy's backoff (or after ``delay`` seconds).

    ``delay`` is the handler's own choice (a server's Retry-After, say) and is used as given;
    the worker's ``backoff_scale`` only shrinks the policy's delays.
    """

    def __init__(self, reason: str, delay: float | None = None) -> None:
        if delay is not None and delay < 0:
            raise ValueError(f"Retry delay must be >= 0 s, got {delay}")
        super().__init__(reason)
        self.delay = delay


class TimedOut(Retry):
    """The handler ran past its timeout; the next attempt gets a longer one."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"handler timed out after {timeout_s:g} s")
        self.timeout_s = timeout_s


class NotReady(JobOutcome):
    """The subject is not ready yet (the miner is still running, ERA5 is not published).

    ``until`` must be timezone-aware; the job runs again at that time. Whether this uses up
    an attempt is the job type's policy (``RetryPolicy.not_ready_uses_attempt``).
    ``progressed`` says the handler finished a part of its work on this run (an ERA5 lead
    scored): the wait that follows starts with fresh attempts, so transient failures before
    that part never count against the parts after it.
    """

    def __init__(self, until: datetime, reason: str, *, progressed: bool = False) -> None:
        if until.tzinfo is None:
            raise ValueError(f"NotReady needs a timezone-aware time, got naive {until}")
        super().__init__(reason)
        self.until = until
        self.progressed = progressed


INVALID_PREFIX = "invalid: "
"""How a job failed by ``Invalid`` records its reason (``last_error``, give-up hooks)."""


class Invalid(JobOutcome):
    """Permanent failure (bad data from a miner, failed hash, wrong grid): fail at once."""

"""Retry policies and the one function that turns a handler's outcome into the job's next state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gaia.jobs.outcomes import INVALID_PREFIX, Invalid, JobOutcome, NotReady, Retry, TimedOut
from gaia.jobs.schema import JobStatus


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a job type is retried.

    ``max_attempts`` counts runs of the handler (the first run is attempt 1). After attempt
    ``n`` fails with a :class:`Retry`, the next run waits ``backoff_s[n - 1]`` seconds (the last
    entry repeats when the tuple is shorter). ``timeout_s`` is the first attempt's handler
    timeout; each timeout doubles it for the next attempt, up to ``max_timeout_s``.
    """

    max_attempts: int
    backoff_s: tuple[float, ...]
    timeout_s: float
    max_timeout_s: float
    not_ready_uses_attempt: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not self.backoff_s or any(d < 0 for d in self.backoff_s):
            raise ValueError(f"backoff_s must be non-empty and >= 0, got {self.backoff_s}")
        if not 0 < self.timeout_s <= self.max_timeout_s:
            raise ValueError(
                f"need 0 < timeout_s <= max_timeout_s, got {self.timeout_s} and {self.max_timeout_s}"
            )

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based), before any scaling."""
        return self.backoff_s[min(attempt, len(self.backoff_s)) - 1]

    def next_timeout(self, timeout_s: float) -> float:
        return min(timeout_s * 2, self.max_timeout_s)


@dataclass(frozen=True, slots=True)
class Resolution:
    """The job's next state. A queued job runs ``delay_s`` after now (database clock), or at
    ``run_at`` when that is given."""

    status: JobStatus
    attempts: int
    timeout_s: float
    delay_s: float = 0.0
    run_at: datetime | None = None
    error: str | None = None


def resolve(
    outcome: JobOutcome | None,
    *,
    attempts: int,
    max_attempts: int,
    timeout_s: float,
    policy: RetryPolicy,
    backoff_scale: float = 1.0,
) -> Resolution:
    """Map a handler's outcome (``None`` = returned) to the job's next state.

    ``attempts`` counts this run (attempts are counted when a job is claimed). ``max_attempts``
    and ``timeout_s`` come from the job's row, the backoff schedule from ``policy``.
    """
    if outcome is None:
        return Resolution(JobStatus.SUCCEEDED, attempts, timeout_s)
    if isinstance(outcome, Invalid):
        return Resolution(JobStatus.FAILED, attempts, timeout_s, error=INVALID_PREFIX + outcome.reason)
    if isinstance(outcome, NotReady):
        return _not_ready(outcome, attempts, max_attempts, timeout_s, policy)
    if isinstance(outcome, Retry):
        return _retry(outcome, attempts, max_attempts, timeout_s, policy, backoff_scale)
    raise TypeError(f"unknown job outcome {type(outcome).__name__}")


def _not_ready(
    outcome: NotReady, attempts: int, max_attempts: int, timeout_s: float, policy: RetryPolicy
) -> Resolution:
    error = f"not ready: {outcome.reason}"
    if outcome.progressed:
        return Resolution(JobStatus.QUEUED, 0, timeout_s, run_at=outcome.until, error=error)
    if not policy.not_ready_uses_attempt:
        return Resolution(JobStatus.QUEUED, attempts - 1, timeout_s, run_at=outcome.until, error=error)
    if attempts >= max_attempts:
        error = f"still not ready after {attempts} attempts: {outcome.reason}"
        return Resolution(JobStatus.FAILED, attempts, timeout_s, error=error)
    return Resolution(JobStatus.QUEUED, attempts, timeout_s, run_at=outcome.until, error=error)


def _retry(
    outcome: Retry,
    attempts: int,
    max_attempts: int,
    timeout_s: float,
    policy: RetryPolicy,
    backoff_scale: float,
) -> Resolution:
    if isinstance(outcome, TimedOut):
        timeout_s = policy.next_timeout(timeout_s)
    if attempts >= max_attempts:
        error = f"gave up after {attempts} attempts: {outcome.reason}"
        return Resolution(JobStatus.FAILED, attempts, timeout_s, error=error)
    if outcome.delay is not None:
        delay = outcome.delay
    else:
        delay = policy.delay_after(attempts) * backoff_scale
    return Resolution(JobStatus.QUEUED, attempts, timeout_s, delay_s=delay, error=outcome.reason)

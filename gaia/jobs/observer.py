"""What a worker tells an observer about its jobs: claims, and each handler run's result.

The queue knows nothing of what watches it: the validator passes an observer that records
metrics; the default records nothing. Observers are called on the worker's event loop and
must not block or raise.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from gaia.jobs.outcomes import JobOutcome, NotReady, TimedOut
from gaia.jobs.policy import Resolution
from gaia.jobs.schema import JobStatus


class JobResult(StrEnum):
    """How one run of a handler ended, as the job's next state shows it."""

    SUCCEEDED = "succeeded"
    RETRIED = "retried"  # Retry or an unexpected exception; queued again after a backoff
    TIMED_OUT = "timed_out"  # queued again with a longer timeout
    NOT_READY = "not_ready"  # queued again until its subject is ready
    FAILED = "failed"  # given up: invalid, or no attempts left


def result_of(outcome: JobOutcome | None, resolution: Resolution) -> JobResult:
    """The one mapping from a handler's outcome and the job's next state to a result."""
    if resolution.status is JobStatus.SUCCEEDED:
        return JobResult.SUCCEEDED
    if resolution.status is JobStatus.FAILED:
        return JobResult.FAILED
    if isinstance(outcome, TimedOut):
        return JobResult.TIMED_OUT
    if isinstance(outcome, NotReady):
        return JobResult.NOT_READY
    return JobResult.RETRIED


class WorkerObserver(Protocol):
    def job_claimed(self, job_type: str) -> None:
        """The worker claimed a job of ``job_type`` (it runs now, or soon when prefetched)."""

    def job_finished(self, job_type: str, result: JobResult, duration_s: float) -> None:
        """A handler run ended with ``result`` after ``duration_s`` seconds (monotonic)."""


class NoObserver:
    """Records nothing: a worker nobody watches."""

    def job_claimed(self, job_type: str) -> None:
        return None

    def job_finished(self, job_type: str, result: JobResult, duration_s: float) -> None:
        return None


NO_OBSERVER = NoObserver()

"""Job type → handler, retry policy, give-up hook and concurrency limit; the context a handler
receives."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.jobs.outcomes import Invalid
from gaia.jobs.policy import RetryPolicy

P = TypeVar("P")

Handler = Callable[[P, "JobContext"], Awaitable[None]]
GiveUpHook = Callable[[AsyncSession, P, str], Awaitable[None]]
"""``async on_give_up(session, payload, reason)``: mark the job's subject failed. It runs in
the transaction that marks the job failed, so both commit together."""

SUBJECT_FIELDS = ("run_id", "miner_hotkey", "hotkey", "miner_uid")
"""Payload fields that name a job's subject in log lines."""


def describe_subject(payload: Mapping[str, Any]) -> str:
    """``run_id=42 miner_hotkey=5F…`` from whichever subject fields the payload has."""
    return " ".join(f"{k}={payload[k]}" for k in SUBJECT_FIELDS if k in payload)


class JobLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every line with the job's id, type, attempt and subject, and adds them as
    ``extra`` fields for structured handlers."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = self.extra or {}
        prefix = (
            f"job {extra['job_id']} {extra['job_type']} attempt {extra['attempt']}"
            f" {extra['subject']}".rstrip()
        )
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        return f"[{prefix}] {msg}", kwargs


def job_logger(job_id: int, job_type: str, attempt: int, payload: Mapping[str, Any]) -> JobLogger:
    """The logger of one run of a job: ``gaia.jobs.<job type>`` with the job's fields."""
    fields = {
        "job_id": job_id,
        "job_type": job_type,
        "attempt": attempt,
        "subject": describe_subject(payload),
    }
    return JobLogger(_type_logger(job_type), fields)


@functools.cache
def _type_logger(job_type: str) -> logging.Logger:
    return logging.getLogger(f"gaia.jobs.{job_type}")


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler knows about the run it is in."""

    job_id: int
    job_type: str
    attempt: int
    max_attempts: int
    timeout_s: float
    session_factory: async_sessionmaker[AsyncSession]
    log: JobLogger


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    """At most ``limit`` jobs of the types in ``group`` run at once in one worker process.

    For jobs that wait on a scarcer resource of the process than a handler slot (a scoring
    process): the worker claims such a job only when the group has a free place, so it never
    holds a handler slot while it waits and the other job types keep flowing."""

    group: str
    limit: int

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"concurrency limit of group {self.group!r} must be >= 1, "
                             f"got {self.limit}")


@dataclass(frozen=True, slots=True)
class JobSpec(Generic[P]):
    job_type: str
    handler: Handler[P]
    policy: RetryPolicy
    payload_model: type[BaseModel] | None = None
    on_give_up: GiveUpHook[P] | None = None
    limit: ConcurrencyLimit | None = None  # None: only the worker's handler slots bound it

    def parse(self, payload: dict[str, Any]) -> P:
        """The handler's payload: the raw dict, or the pydantic model; a bad payload is
        :class:`Invalid` (no retry can fix it)."""
        if self.payload_model is None:
            return payload  # type: ignore[return-value]
        try:
            return self.payload_model.model_validate(payload)  # type: ignore[return-value]
        except ValidationError as exc:
            raise Invalid(f"bad payload for {self.job_type}: {exc}") from exc


class JobRegistry:
    """Maps job types to :class:`JobSpec`. Collaborators are bound into the handler at
    registration (a bound method or ``functools.partial``)."""

    def __init__(self) -> None:
        self._specs: dict[str, JobSpec[Any]] = {}

    def register(
        self,
        job_type: str,
        handler: Handler[Any],
        *,
        policy: RetryPolicy,
        payload_model: type[BaseModel] | None = None,
        on_give_up: GiveUpHook[Any] | None = None,
        limit: ConcurrencyLimit | None = None,
    ) -> None:
        """``limit``: the group this type shares a concurrency limit with; every type of a
        group must name the same limit."""
        if job_type in self._specs:
            raise ValueError(f"job type {job_type!r} is already registered")
        if len(job_type) > 64:
            raise ValueError(f"job type {job_type!r} is longer than 64 characters")
        if limit is not None:
            known = self.limits().get(limit.group, limit)
            if known != limit:
                raise ValueError(f"group {limit.group!r} already has limit {known.limit}, "
                                 f"{job_type!r} asks for {limit.limit}")
        self._specs[job_type] = JobSpec(job_type, handler, policy, payload_model, on_give_up,
                                        limit)

    def spec(self, job_type: str) -> JobSpec[Any]:
        try:
            return self._specs[job_type]
        except KeyError:
            raise KeyError(f"no handler registered for job type {job_type!r}") from None

    def policies(self) -> dict[str, RetryPolicy]:
        return {t: s.policy for t, s in self._specs.items()}

    def limits(self) -> dict[str, ConcurrencyLimit]:
        """Group name → its limit, for the groups some registered type belongs to."""
        return {s.limit.group: s.limit for s in self._specs.values() if s.limit is not None}

    @property
    def job_types(self) -> list[str]:
        return sorted(self._specs)

    def __iter__(self) -> Iterator[JobSpec[Any]]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

"""The durable job queue on PostgreSQL (DESIGN.md section 4) and its worker runtime."""

from gaia.jobs.giveup import HeldJob, ReapResult, give_up, reap_expired
from gaia.jobs.outcomes import Invalid, JobOutcome, NotReady, Retry, TimedOut
from gaia.jobs.policy import Resolution, RetryPolicy, resolve
from gaia.jobs.queue import (
    JobQueue,
    LiveSingletonExists,
    NewJob,
    asyncpg_dsn,
    cancel_job,
    job_counts,
    purge_finished,
    requeue_job,
)
from gaia.jobs.registry import JobContext, JobRegistry, JobSpec, describe_subject
from gaia.jobs.retry_config import RETRY_CONFIG, SINGLETON_JOBS, WeatherJob, singleton_key
from gaia.jobs.worker import Worker, WorkerOptions, stop_on_signals

__all__ = [
    "RETRY_CONFIG",
    "SINGLETON_JOBS",
    "HeldJob",
    "Invalid",
    "JobContext",
    "JobOutcome",
    "JobQueue",
    "JobRegistry",
    "JobSpec",
    "LiveSingletonExists",
    "NewJob",
    "NotReady",
    "ReapResult",
    "Resolution",
    "Retry",
    "RetryPolicy",
    "TimedOut",
    "WeatherJob",
    "Worker",
    "WorkerOptions",
    "asyncpg_dsn",
    "cancel_job",
    "describe_subject",
    "give_up",
    "job_counts",
    "purge_finished",
    "reap_expired",
    "requeue_job",
    "resolve",
    "singleton_key",
    "stop_on_signals",
]

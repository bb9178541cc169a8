"""The durable job queue on PostgreSQL (DESIGN.md section 4) and its worker runtime.

Register handlers, enqueue in the caller's transaction, run workers::

    registry = JobRegistry()
    registry.register(WeatherJob.SEED, seed_step.run, policy=RETRY_CONFIG[WeatherJob.SEED],
                      payload_model=SeedPayload, on_give_up=seed_step.give_up)
    queue = JobQueue(registry.policies())

    async with session_factory() as session, session.begin():
        ...  # the state change
        await queue.enqueue(session, WeatherJob.SEED, SeedPayload(run_id=42),
                            singleton_key=singleton_key(WeatherJob.SEED, run=42))

    worker = Worker(asyncpg_dsn(settings.database_url), registry, session_factory,
                    WorkerOptions.from_settings(settings.validator))
    stop_on_signals(worker)
    await worker.run()

A handler is ``async def handler(payload, ctx: JobContext) -> None``: it returns when done or
raises :class:`Retry`, :class:`NotReady` or :class:`Invalid`; anything else counts as a retry.
Types that share a scarce resource of the process register with one
``ConcurrencyLimit(group, n)``: a worker runs at most ``n`` of the group at once and claims
them only when a place is free. A handler's wait for a shared resource inside
``not_counted()`` does not count against its timeout.
"""

from gaia.jobs.deadline import not_counted
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
from gaia.jobs.registry import (
    ConcurrencyLimit,
    JobContext,
    JobRegistry,
    JobSpec,
    describe_subject,
)
from gaia.jobs.retry_config import RETRY_CONFIG, SINGLETON_JOBS, WeatherJob, singleton_key
from gaia.jobs.worker import Worker, WorkerOptions, stop_on_signals

__all__ = [
    "RETRY_CONFIG",
    "SINGLETON_JOBS",
    "ConcurrencyLimit",
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
    "not_counted",
    "purge_finished",
    "reap_expired",
    "requeue_job",
    "resolve",
    "singleton_key",
    "stop_on_signals",
]

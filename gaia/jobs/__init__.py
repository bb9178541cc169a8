"""The durable job queue on PostgreSQL and its worker runtime (docs/ARCHITECTURE.md, "The
walk of a job").

The queue knows no job type: its users register theirs with a handler and a retry policy,
enqueue in the caller's transaction, and run workers::

    class Greeting(BaseModel):
        name: str

    async def greet(payload: Greeting, ctx: JobContext) -> None:
        ctx.log.info("hello %s", payload.name)

    registry = JobRegistry()
    registry.register("example.greet", greet, payload_model=Greeting,
                      policy=RetryPolicy(3, (10, 60), timeout_s=30, max_timeout_s=120))
    queue = JobQueue(registry.policies())

    async with session_factory() as session, session.begin():
        ...  # the state change
        await queue.enqueue(session, "example.greet", Greeting(name="Ada"),
                            singleton_key=singleton_key("example.greet", name="Ada"))

    worker = Worker(asyncpg_dsn(database_url), registry, session_factory,
                    WorkerOptions(concurrency=4))
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
    singleton_key,
)
from gaia.jobs.registry import (
    ConcurrencyLimit,
    JobContext,
    JobRegistry,
    JobSpec,
    describe_subject,
)
from gaia.jobs.schema import JobStatus, ValidatorJob
from gaia.jobs.worker import Worker, WorkerOptions, stop_on_signals

__all__ = [
    "ConcurrencyLimit",
    "HeldJob",
    "Invalid",
    "JobContext",
    "JobOutcome",
    "JobQueue",
    "JobRegistry",
    "JobSpec",
    "JobStatus",
    "LiveSingletonExists",
    "NewJob",
    "NotReady",
    "ReapResult",
    "Resolution",
    "Retry",
    "RetryPolicy",
    "TimedOut",
    "ValidatorJob",
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

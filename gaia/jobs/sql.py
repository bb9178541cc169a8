"""Every SQL statement of the job queue, by name.

Due times (``run_at``) are compared with the injected clock's time, passed in as a parameter,
never with the database's ``now()``: a simulation on a virtual clock moves them all at once.
Leases, heartbeats and bookkeeping stamps (``updated_at``, ``finished_at``) use the database's
own time.

Statements run through SQLAlchemy (the caller's transaction, inspection, give-up) use
``:name`` parameters; the worker's hot path (the cycle, heartbeat, release) runs on raw
asyncpg connections and uses ``$n`` parameters.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import DateTime, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.types import Double, Integer, Text

CHANNEL: Final = "gaia_jobs"
"""NOTIFY channel: a job became ready to run now."""

_LIVE = "status IN ('queued', 'running')"
_CONFLICT = f"ON CONFLICT (singleton_key) WHERE {_LIVE} DO NOTHING"
_NOTIFY_IF_DUE = f"CASE WHEN run_at <= :now THEN pg_notify('{CHANNEL}', '') END"

ENQUEUE: Final[TextClause] = text(
    f"""
    WITH inserted AS (
        INSERT INTO validator_jobs (job_type, payload, singleton_key, run_at, max_attempts, timeout_s)
        VALUES (:job_type, :payload, :singleton_key, COALESCE(:run_at, :now),
                :max_attempts, :timeout_s)
        {_CONFLICT}
        RETURNING id, run_at
    )
    SELECT id, {_NOTIFY_IF_DUE} FROM inserted
    """
).bindparams(
    bindparam("payload", type_=JSONB),
    bindparam("run_at", type_=DateTime(timezone=True)),
    bindparam("now", type_=DateTime(timezone=True)),
)

ENQUEUE_MANY: Final[TextClause] = text(
    f"""
    WITH inserted AS (
        INSERT INTO validator_jobs (job_type, payload, singleton_key, run_at, max_attempts, timeout_s)
        SELECT u.job_type, u.payload::jsonb, u.singleton_key, COALESCE(:run_at, :now),
               u.max_attempts, u.timeout_s
        FROM unnest(:job_types, :payloads, :singleton_keys, :max_attempts, :timeouts)
             AS u(job_type, payload, singleton_key, max_attempts, timeout_s)
        {_CONFLICT}
        RETURNING id, run_at
    )
    SELECT id, {_NOTIFY_IF_DUE} FROM inserted ORDER BY id
    """
).bindparams(
    bindparam("run_at", type_=DateTime(timezone=True)),
    bindparam("now", type_=DateTime(timezone=True)),
    bindparam("job_types", type_=ARRAY(Text)),
    bindparam("payloads", type_=ARRAY(Text)),
    bindparam("singleton_keys", type_=ARRAY(Text)),
    bindparam("max_attempts", type_=ARRAY(Integer)),
    bindparam("timeouts", type_=ARRAY(Double)),
)

# --- worker hot path (asyncpg) -------------------------------------------------------------

CYCLE: Final = """
    WITH finished AS (
        UPDATE validator_jobs AS j
        SET status = d.status::job_status,
            attempts = d.attempts,
            timeout_s = d.timeout_s,
            run_at = COALESCE(d.run_at, $13::timestamptz + make_interval(secs => d.delay_s)),
            last_error = COALESCE(d.error, j.last_error),
            locked_by = NULL, lease_until = NULL, updated_at = now(),
            finished_at = CASE WHEN d.status = 'queued' THEN NULL ELSE now() END
        FROM unnest($5::bigint[], $6::int[], $7::text[], $8::int[], $9::float8[], $10::float8[],
                    $11::timestamptz[], $12::text[])
             AS d(id, claimed, status, attempts, timeout_s, delay_s, run_at, error)
        WHERE j.id = d.id AND j.status = 'running' AND j.locked_by = $1
              AND j.attempts = d.claimed
        RETURNING j.id
    ), claim_groups AS (
        SELECT g.places, array_agg(t.job_type) AS job_types
        FROM unnest($15::int[]) WITH ORDINALITY AS g(places, n)
        JOIN unnest($3::text[], $14::int[]) AS t(job_type, n) USING (n)
        GROUP BY g.n, g.places
    ), picked AS (
        SELECT p.id FROM claim_groups AS g
        CROSS JOIN LATERAL (
            SELECT id, run_at FROM validator_jobs
            WHERE status = 'queued' AND run_at <= $13::timestamptz AND job_type = ANY(g.job_types)
            ORDER BY run_at, id
            LIMIT g.places
            FOR UPDATE SKIP LOCKED
        ) AS p
        ORDER BY p.run_at, p.id
        LIMIT $4
    )
    UPDATE validator_jobs AS j
    SET status = 'running', attempts = j.attempts + 1, locked_by = $1,
        lease_until = now() + make_interval(secs => $2), updated_at = now()
    FROM picked WHERE j.id = picked.id
    RETURNING j.id, j.job_type, j.payload::text, j.attempts, j.max_attempts, j.timeout_s
"""
"""One round trip of the worker: write a batch of finished jobs and claim up to $4 more.

$1 worker id, $2 lease seconds, $3 the job types to claim, $4 how many to claim in all;
$14 each type's claim group (1-based) and $15 each group's places: each group is claimed
oldest due first up to its places, and of those the oldest $4 are taken (the group of the
types without a limit has $4 places). $5..$12 the finished jobs (id, claimed attempt, new status, attempts, timeout, delay or run_at,
error), applied only to jobs this worker still holds at the claimed attempt; $13 the clock's
now, against which due times are compared and delays counted (leases use the database's own
time). Jobs put back in the queue by this statement are not visible to its own claim (one
snapshot).
"""

EXTEND_LEASES: Final = """
    UPDATE validator_jobs
    SET lease_until = now() + make_interval(secs => $2), updated_at = now()
    WHERE id = ANY($3::bigint[]) AND status = 'running' AND locked_by = $1
"""

RELEASE: Final = f"""
    WITH released AS (
        UPDATE validator_jobs
        SET status = 'queued', attempts = attempts - 1, run_at = $3::timestamptz,
            last_error = 'released unfinished at shutdown by ' || locked_by,
            locked_by = NULL, lease_until = NULL, updated_at = now()
        WHERE id = ANY($2::bigint[]) AND status = 'running' AND locked_by = $1
        RETURNING id
    )
    SELECT count(*), pg_notify('{CHANNEL}', '') FROM released
"""
"""Shutdown: hand unfinished jobs back without counting the attempt ($3: the clock's now)."""

# --- give-up and reaper (SQLAlchemy, so hooks share the transaction) ------------------------

MARK_FAILED: Final[TextClause] = text(
    """
    UPDATE validator_jobs
    SET status = 'failed', attempts = :attempts, timeout_s = :timeout_s, last_error = :error,
        locked_by = NULL, lease_until = NULL, updated_at = now(), finished_at = now()
    WHERE id = :id AND status = 'running' AND attempts = :claimed
          AND locked_by IS NOT DISTINCT FROM :locked_by
    RETURNING id
    """
)

REQUEUE_EXPIRED: Final[TextClause] = text(
    f"""
    WITH expired AS (
        SELECT id FROM validator_jobs
        WHERE status = 'running' AND lease_until < now() AND attempts < max_attempts
              AND job_type = ANY(:job_types)
        ORDER BY lease_until
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ), requeued AS (
        UPDATE validator_jobs AS j
        SET status = 'queued', run_at = :now,
            last_error = 'lease expired on ' || j.locked_by || ' during attempt ' || j.attempts,
            locked_by = NULL, lease_until = NULL, updated_at = now()
        FROM expired WHERE j.id = expired.id
        RETURNING j.id
    )
    SELECT count(*), CASE WHEN count(*) > 0 THEN pg_notify('{CHANNEL}', '') END FROM requeued
    """
).bindparams(
    bindparam("job_types", type_=ARRAY(Text)), bindparam("now", type_=DateTime(timezone=True)),
)

SELECT_EXHAUSTED_EXPIRED: Final[TextClause] = text(
    """
    SELECT id, job_type, payload, attempts, timeout_s, locked_by FROM validator_jobs
    WHERE status = 'running' AND lease_until < now() AND attempts >= max_attempts
          AND job_type = ANY(:job_types)
    ORDER BY lease_until
    LIMIT :limit
    """
).bindparams(bindparam("job_types", type_=ARRAY(Text)))
"""Expired jobs with no attempt left; each is then failed by MARK_FAILED with its hook."""

# --- inspection and maintenance -------------------------------------------------------------

SINGLETON_KEY_USED: Final[TextClause] = text(
    "SELECT EXISTS (SELECT 1 FROM validator_jobs WHERE singleton_key = :singleton_key)"
)
"""Whether any job, live or finished, ever carried this key (periodic slots run once)."""

JOB_COUNTS: Final[TextClause] = text(
    "SELECT job_type, status::text, count(*) FROM validator_jobs GROUP BY job_type, status"
)

REQUEUE_FINISHED: Final[TextClause] = text(
    f"""
    WITH requeued AS (
        UPDATE validator_jobs
        SET status = 'queued', attempts = 0, run_at = :now, finished_at = NULL, updated_at = now()
        WHERE id = :id AND status IN ('failed', 'cancelled')
        RETURNING id
    )
    SELECT id, pg_notify('{CHANNEL}', '') FROM requeued
    """
).bindparams(bindparam("now", type_=DateTime(timezone=True)))

CANCEL_QUEUED: Final[TextClause] = text(
    """
    UPDATE validator_jobs
    SET status = 'cancelled', updated_at = now(), finished_at = now()
    WHERE id = :id AND status = 'queued'
    RETURNING id
    """
)

NEXT_DUE: Final[TextClause] = text(
    """
    SELECT count(*) FILTER (WHERE status = 'running'),
           count(*) FILTER (WHERE status = 'queued' AND run_at <= :now),
           min(run_at) FILTER (WHERE status = 'queued' AND run_at > :now)
    FROM validator_jobs WHERE status IN ('queued', 'running')
    """
).bindparams(bindparam("now", type_=DateTime(timezone=True)))
"""Running jobs, jobs due at ``:now``, and the next later due time (a virtual clock's next stop)."""

OLDEST_DUE: Final[TextClause] = text(
    "SELECT min(run_at) FROM validator_jobs WHERE status = 'queued' AND run_at <= :now"
).bindparams(bindparam("now", type_=DateTime(timezone=True)))
"""The due time of the job that has waited longest for a worker at ``:now`` (NULL: none)."""

WAKE_WORKERS: Final[TextClause] = text(f"SELECT pg_notify('{CHANNEL}', '')")
"""Tell idle workers to claim again (after a virtual clock moved on)."""

PURGE_FINISHED: Final[TextClause] = text(
    """
    DELETE FROM validator_jobs
    WHERE status IN ('succeeded', 'failed', 'cancelled')
          AND finished_at < now() - make_interval(secs => :older_than_s)
    """
)

"""Carrying the previous validator's weather history into this project's tables (revision 0006).

Runs and responses keep their ids, so every previous table that points at them (component
scores, stats, steps, …) still names the same forecast. ADOPTION.md says what each row becomes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gaia.database.previous_validator import reading
from gaia.database.previous_validator.decisions import (
    FAILED_STEP,
    AdoptedResponse,
    AdoptedRun,
    PreviousResponse,
    adopt_response,
    adopt_run,
    choose_runs,
)
from gaia.database.previous_validator.detect import PREFIX, PREVIOUS_HEAD
from gaia.jobs.policy import RetryPolicy

ADOPTION_TABLE = "previous_validator_adoption"
# Revision 0002's deadline for a run it converts: the next cycle's analysis is out by then.
COMMIT_DEADLINE_AFTER_INIT = timedelta(hours=9, minutes=30)


@dataclass(frozen=True)
class _Run:
    id: int
    gfs_init_time: datetime
    status: str
    error_message: str | None

    def deadline_passed(self, now: datetime) -> bool:
        return self.gfs_init_time + COMMIT_DEADLINE_AFTER_INIT <= now


def carry(conn: Connection, policies: Mapping[str, RetryPolicy]) -> None:
    adopted_at: datetime = conn.scalar(text("SELECT now()"))
    _record_adoption(conn, adopted_at)
    carried, _ = choose_runs(reading.runs(conn, PREFIX))  # revision 0000 refused conflicts
    runs = {run.id: run for run in _runs(conn, carried)}
    old = reading.responses(conn, PREFIX, carried)
    adopted = [adopt_response(r, runs[r.run_id].deadline_passed(adopted_at)) for r in old]
    statuses: dict[int, list[str]] = {run_id: [] for run_id in runs}
    for response, new in zip(old, adopted, strict=True):
        statuses[response.run_id].append(new.status)
    new_runs = {run.id: adopt_run(run.status, run.error_message, run.deadline_passed(adopted_at),
                                  statuses[run.id]) for run in runs.values()}
    _insert_runs(conn, new_runs, adopted_at)
    _insert_responses(conn, old, adopted, adopted_at)
    _insert_scores(conn, old)
    _continue_sequences(conn)
    _seed_miners(conn, adopted_at)
    _enqueue(conn, policies, new_runs, old, adopted, adopted_at)


def _record_adoption(conn: Connection, adopted_at: datetime) -> None:
    conn.execute(text(f"CREATE TABLE {ADOPTION_TABLE} (adopted_at timestamptz NOT NULL,"
                      f" previous_revision varchar(32) NOT NULL)"))
    conn.execute(text(f"INSERT INTO {ADOPTION_TABLE} VALUES (:at, :rev)"),
                 {"at": adopted_at, "rev": PREVIOUS_HEAD})


def _runs(conn: Connection, ids: set[int]) -> list[_Run]:
    rows = conn.execute(text(
        f"SELECT id, gfs_init_time_utc, status, error_message FROM {PREFIX}weather_forecast_runs"
        f" WHERE id = ANY(:ids)"), {"ids": sorted(ids)})
    return [_Run(*row) for row in rows]


def _insert_runs(conn: Connection, runs: Mapping[int, AdoptedRun], adopted_at: datetime) -> None:
    conn.execute(text(
        f"""
        INSERT INTO weather_forecast_runs (id, gfs_init_time, mode, status, commit_deadline, error,
                                           created_at, updated_at, completed_at)
        SELECT r.id, r.gfs_init_time_utc, 'live', CAST(a.status AS weather_run_status),
               r.gfs_init_time_utc + :window, a.error, r.run_initiation_time, :at,
               CASE WHEN a.status IN ('completed', 'error')
                    THEN coalesce(r.completion_time, :at) END
        FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:errors AS text[]))
             AS a(id, status, error)
        JOIN {PREFIX}weather_forecast_runs r ON r.id = a.id
        """), {"ids": list(runs), "statuses": [r.status for r in runs.values()],
               "errors": [r.error for r in runs.values()], "at": adopted_at,
               "window": COMMIT_DEADLINE_AFTER_INIT})


def _insert_responses(
    conn: Connection, old: Sequence[PreviousResponse], adopted: Sequence[AdoptedResponse],
    adopted_at: datetime,
) -> None:
    conn.execute(text(
        f"""
        INSERT INTO weather_miner_responses (id, run_id, miner_hotkey, miner_uid, status,
            miner_job_id, inference_started_at, failure_reason, failed_step, created_at, updated_at)
        SELECT m.id, m.run_id, m.miner_hotkey, m.miner_uid,
               CAST(a.status AS weather_response_status), m.job_id, m.inference_started_at,
               a.reason, CASE WHEN a.status = 'failed' THEN CAST(:step AS text) END,
               m.response_time, :at
        FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:reasons AS text[]))
             AS a(id, status, reason)
        JOIN {PREFIX}weather_miner_responses m ON m.id = a.id
        """), {"ids": [r.id for r in old], "statuses": [a.status for a in adopted],
               "reasons": [a.failure_reason for a in adopted], "step": FAILED_STEP,
               "at": adopted_at})


def _insert_scores(conn: Connection, old: Sequence[PreviousResponse]) -> None:
    """The previous per-run scores as this project's summary records: its day-1 score as the
    day-1 ``score``, and the run score its weights used (final ERA5 composite, else day-1) as
    the roll-up ``score`` that this project's weights read."""
    rows = []
    for r in old:
        run_score = r.era5_score if r.era5_score is not None else r.day1_score
        if r.day1_score is not None:
            rows.append((r.run_id, r.miner_hotkey, "day1", r.day1_score))
        if run_score is not None:
            rows.append((r.run_id, r.miner_hotkey, "rollup", run_score))
    if not rows:
        return
    run_ids, hotkeys, kinds, values = (list(column) for column in zip(*rows, strict=True))
    conn.execute(text(
        """
        INSERT INTO weather_miner_scores (run_id, miner_hotkey, kind, variable, level, lead_hours,
                                          metric, value)
        SELECT run_id, hotkey, CAST(kind AS weather_score_kind), 'all', 0, 0, 'score', value
        FROM unnest(CAST(:runs AS bigint[]), CAST(:hotkeys AS text[]), CAST(:kinds AS text[]),
                    CAST(:values AS double precision[])) AS s(run_id, hotkey, kind, value)
        """), {"runs": run_ids, "hotkeys": hotkeys, "kinds": kinds, "values": values})


def _continue_sequences(conn: Connection) -> None:
    """New ids start after every previous one, carried or not, so rows created from now on can
    go back to the previous tables on a downgrade without colliding."""
    for table in ("weather_forecast_runs", "weather_miner_responses"):
        conn.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id))"
            f" FROM {PREFIX}{table} HAVING max(id) IS NOT NULL"))


def _seed_miners(conn: Connection, adopted_at: datetime) -> None:
    """The previous metagraph (``node_table``): resumed jobs reach the miners' axons before
    the first sync, and the carried scores count for weights, since a hotkey is registered
    from the first carried run it answered at its current uid. The next metagraph sync
    corrects the rest and restarts any hotkey whose uid changed."""
    conn.execute(text(
        """
        INSERT INTO miners (hotkey, uid, coldkey, ip, port, stake, registered_at, last_seen)
        SELECT DISTINCT ON (n.hotkey) n.hotkey, n.uid, coalesce(n.coldkey, ''),
               CASE WHEN length(n.ip) <= 64 THEN n.ip END, n.port, coalesce(n.stake, 0),
               coalesce(f.first_run, :at), :at
        FROM node_table n
        LEFT JOIN (
            SELECT m.miner_hotkey, m.miner_uid, min(s.started) AS first_run
            FROM weather_miner_responses m
            JOIN (SELECT run_id, min(created_at) AS started FROM weather_miner_responses
                  GROUP BY run_id) s USING (run_id)
            GROUP BY m.miner_hotkey, m.miner_uid
        ) f ON f.miner_hotkey = n.hotkey AND f.miner_uid = n.uid
        WHERE n.hotkey IS NOT NULL AND length(n.hotkey) <= 64
        ORDER BY n.hotkey, n.last_updated DESC
        """), {"at": adopted_at})


def _enqueue(
    conn: Connection, policies: Mapping[str, RetryPolicy], runs: Mapping[int, AdoptedRun],
    old: Sequence[PreviousResponse], adopted: Sequence[AdoptedResponse], adopted_at: datetime,
) -> None:
    """The job that takes up each run and response still running."""
    jobs: list[tuple[str, dict[str, object], str]] = [
        (a.resume_with, {"run_id": run_id}, f"{a.resume_with}:run={run_id}")
        for run_id, a in runs.items() if a.resume_with]
    jobs += [(a.resume_with,
              {"run_id": r.run_id, "response_id": r.id, "miner_hotkey": r.miner_hotkey},
              f"{a.resume_with}:run={r.run_id}:hotkey={r.miner_hotkey}")
             for r, a in zip(old, adopted, strict=True) if a.resume_with]
    for job_type, payload, key in jobs:
        policy = policies[job_type]
        conn.execute(text(
            "INSERT INTO validator_jobs (job_type, payload, singleton_key, run_at, max_attempts,"
            " timeout_s) VALUES (:type, CAST(:payload AS jsonb), :key, :at, :attempts, :timeout)"
        ), {"type": job_type, "payload": json.dumps(payload), "key": key, "at": adopted_at,
            "attempts": policy.max_attempts, "timeout": policy.timeout_s})

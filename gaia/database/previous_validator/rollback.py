"""Giving the previous validator its weather rows back (revision 0006 downgrade).

Rows this project did not touch since adopting stay exactly as the previous validator left
them. Rows it changed or created go back with their statuses mapped to values the previous
code understands (``statuses.*_BACK``); hindcast runs, which the previous validator has no
notion of, and this project's scores and jobs are dropped with its tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gaia.database.previous_validator import statuses as st
from gaia.database.previous_validator.detect import PREFIX
from gaia.database.previous_validator.history import ADOPTION_TABLE
from gaia.database.previous_validator.refusals import LISTED_IDS

RUNS, RESPONSES = f"{PREFIX}weather_forecast_runs", f"{PREFIX}weather_miner_responses"
_NEW_RESPONSES = f"""
    FROM weather_miner_responses n JOIN weather_forecast_runs r ON r.id = n.run_id
    WHERE r.mode = 'live' AND NOT EXISTS (SELECT 1 FROM {RESPONSES} p WHERE p.id = n.id)
"""


class RollbackRefused(RuntimeError):
    """The database stays adopted; the message says which rows the previous schema cannot hold."""


def give_back(conn: Connection) -> None:
    adopted_at: datetime = conn.scalar(text(f"SELECT adopted_at FROM {ADOPTION_TABLE}"))
    _check(conn)
    back = {"at": adopted_at,
            "run_new": list(st.RUN_STATUSES_BACK), "run_old": list(st.RUN_STATUSES_BACK.values()),
            "resp_new": list(st.RESPONSE_STATUSES_BACK),
            "resp_old": list(st.RESPONSE_STATUSES_BACK.values())}
    for statement in (_UPDATE_RUNS, _INSERT_RUNS, _UPDATE_RESPONSES, _INSERT_RESPONSES):
        conn.execute(text(statement), back)
    for table in (RUNS, RESPONSES):
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id))"
                          f" FROM {table} HAVING max(id) IS NOT NULL"))
    conn.execute(text("DELETE FROM weather_forecast_runs"))  # cascades to responses and scores
    conn.execute(text(f"DROP TABLE {ADOPTION_TABLE}"))


def _check(conn: Connection) -> None:
    """The previous schema needs a uid in ``node_table`` for every response."""
    ids = list(conn.scalars(text(
        f"SELECT n.id {_NEW_RESPONSES} AND NOT EXISTS"
        f" (SELECT 1 FROM node_table t WHERE t.uid = n.miner_uid) ORDER BY n.id")))
    if ids:
        shown = ", ".join(map(str, ids[:LISTED_IDS]))
        raise RollbackRefused(
            f"cannot give the database back to the previous validator, nothing was changed: "
            f"responses {shown}{' …' if len(ids) > LISTED_IDS else ''} have no miner uid that "
            f"node_table holds; delete them (or their runs) and downgrade again")


_UPDATE_RUNS = f"""
    UPDATE {RUNS} p SET status = b.old, error_message = n.error, completion_time = n.completed_at
    FROM weather_forecast_runs n
    JOIN unnest(CAST(:run_new AS text[]), CAST(:run_old AS text[])) AS b(new, old)
      ON b.new = n.status::text
    WHERE p.id = n.id AND n.updated_at > :at
"""
_INSERT_RUNS = f"""
    INSERT INTO {RUNS} (id, run_initiation_time, target_forecast_time_utc, gfs_init_time_utc,
                        status, completion_time, error_message)
    SELECT n.id, n.created_at, n.gfs_init_time, n.gfs_init_time, b.old, n.completed_at, n.error
    FROM weather_forecast_runs n
    JOIN unnest(CAST(:run_new AS text[]), CAST(:run_old AS text[])) AS b(new, old)
      ON b.new = n.status::text
    WHERE n.mode = 'live' AND NOT EXISTS (SELECT 1 FROM {RUNS} p WHERE p.id = n.id)
"""
_UPDATE_RESPONSES = f"""
    UPDATE {RESPONSES} p SET status = b.old, error_message = n.failure_reason,
        job_id = n.miner_job_id, inference_started_at = n.inference_started_at
    FROM weather_miner_responses n
    JOIN unnest(CAST(:resp_new AS text[]), CAST(:resp_old AS text[])) AS b(new, old)
      ON b.new = n.status::text
    WHERE p.id = n.id AND n.updated_at > :at
"""
_INSERT_RESPONSES = f"""
    INSERT INTO {RESPONSES} (id, run_id, miner_uid, miner_hotkey, response_time, job_id, status,
                             error_message, inference_started_at)
    SELECT n.id, n.run_id, n.miner_uid, n.miner_hotkey, n.created_at, n.miner_job_id,
           (SELECT b.old FROM unnest(CAST(:resp_new AS text[]), CAST(:resp_old AS text[]))
                AS b(new, old) WHERE b.new = n.status::text),
           n.failure_reason, n.inference_started_at
    {_NEW_RESPONSES}
"""

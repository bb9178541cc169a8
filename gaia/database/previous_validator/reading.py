"""Reading the previous validator's weather rows, under their own names or set aside."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gaia.database.previous_validator import statuses as st
from gaia.database.previous_validator.decisions import PreviousResponse, PreviousRun


def runs(conn: Connection, prefix: str = "") -> list[PreviousRun]:
    rows = conn.execute(text(
        f"SELECT r.id, r.gfs_init_time_utc, r.status, count(m.id) FROM {prefix}weather_forecast_runs r"
        f" LEFT JOIN {prefix}weather_miner_responses m ON m.run_id = r.id GROUP BY r.id"
    ))
    return [PreviousRun(id, init, status, n) for id, init, status, n in rows]


def responses(conn: Connection, prefix: str, run_ids: set[int]) -> list[PreviousResponse]:
    """Responses of ``run_ids`` with the latest of each per-run score the previous validator
    made its weights from (its scores table keys on nullable columns, so it can hold several)."""
    rows = conn.execute(text(
        f"""
        WITH latest AS (
            SELECT DISTINCT ON (response_id, score_type) response_id, score_type, score
            FROM {prefix}weather_miner_scores WHERE score_type IN (:day1, :era5)
            ORDER BY response_id, score_type, calculation_time DESC, id DESC
        )
        SELECT m.id, m.run_id, m.miner_hotkey, m.status, m.error_message, m.job_id,
               (SELECT score FROM latest WHERE response_id = m.id AND score_type = :day1),
               (SELECT score FROM latest WHERE response_id = m.id AND score_type = :era5)
        FROM {prefix}weather_miner_responses m WHERE m.run_id = ANY(:runs) ORDER BY m.id
        """), {"day1": st.DAY1_SCORE_TYPE, "era5": st.ERA5_SCORE_TYPE, "runs": sorted(run_ids)})
    return [PreviousResponse(*row) for row in rows]


def ids_where(conn: Connection, table: str, condition: str, **params: object) -> list[int]:
    return list(conn.scalars(text(f"SELECT id FROM {table} WHERE {condition} ORDER BY id"), params))

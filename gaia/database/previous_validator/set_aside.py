"""The previous validator's weather tables whose names this project's tables take: renamed with
their sequences and indexes under the ``previous_`` prefix, unchanged otherwise, and renamed
back on the way down. Foreign keys follow a renamed table, so the previous tables that point at
them (component scores, stats, steps, …) keep pointing at the same rows."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gaia.database.previous_validator.detect import PREFIX

SET_ASIDE_TABLES = (
    "weather_forecast_runs",
    "weather_miner_responses",
    "weather_miner_scores",
    "validator_jobs",
)


def _indexes(conn: Connection, table: str) -> list[str]:
    return list(conn.scalars(text(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        " AND tablename = :t ORDER BY indexname"), {"t": table}))


def _sequence(conn: Connection, table: str) -> str | None:
    qualified = conn.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table})
    return qualified.rsplit(".", 1)[-1] if qualified else None


def _rename(conn: Connection, table: str, rename: Callable[[str], str]) -> None:
    """Rename ``table``, its indexes (and so its primary key and unique constraints) and its
    id sequence by ``rename``."""
    for index in _indexes(conn, table):
        conn.execute(text(f'ALTER INDEX "{index}" RENAME TO "{rename(index)}"'))
    sequence = _sequence(conn, table)
    if sequence:
        conn.execute(text(f'ALTER SEQUENCE "{sequence}" RENAME TO "{rename(sequence)}"'))
    conn.execute(text(f'ALTER TABLE "{table}" RENAME TO "{rename(table)}"'))


def _prefixed(name: str) -> str:
    return PREFIX + name


def _unprefixed(name: str) -> str:
    return name.removeprefix(PREFIX)


def set_aside(conn: Connection) -> None:
    for table in SET_ASIDE_TABLES:
        _rename(conn, table, _prefixed)


def put_back(conn: Connection) -> None:
    for table in SET_ASIDE_TABLES:
        _rename(conn, _prefixed(table), _unprefixed)

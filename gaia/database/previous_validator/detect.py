"""What kind of database a migration from base is looking at."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.engine import Connection

PREVIOUS_HEAD = "f33d500dc2bc"  # the previous validator's last Alembic revision (v2.9.96)
PREVIOUS_RELEASE = "Gaia v2.9.96"
PREFIX = "previous_"


class DatabaseKind(StrEnum):
    EMPTY = "empty"  # no weather tables: this project creates its own
    PREVIOUS_VALIDATOR = "previous_validator"  # the previous validator's, to adopt


class NotAdoptable(RuntimeError):
    """Weather tables that are neither this project's nor the previous validator's at its head."""


def table_exists(conn: Connection, table: str) -> bool:
    return bool(conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}))


def previous_revision(conn: Connection) -> str | None:
    if not table_exists(conn, "alembic_version"):
        return None
    return conn.scalar(text("SELECT version_num FROM alembic_version LIMIT 1"))


def classify(conn: Connection, own_revisions: frozenset[str]) -> DatabaseKind:
    """The kind of database at this project's base; raises :class:`NotAdoptable` otherwise."""
    if not table_exists(conn, "weather_forecast_runs"):
        return DatabaseKind.EMPTY
    revision = previous_revision(conn)
    if revision == PREVIOUS_HEAD:
        return DatabaseKind.PREVIOUS_VALIDATOR
    if revision in own_revisions:
        raise NotAdoptable(
            f"this project built the database but kept its revision {revision} in "
            f"alembic_version; run `ALTER TABLE alembic_version RENAME TO "
            f"gaia_weather_alembic_version` and upgrade again")
    raise NotAdoptable(
        f"the database has weather tables, but its alembic_version holds "
        f"{revision or 'nothing'}, not {PREVIOUS_HEAD} ({PREVIOUS_RELEASE}); upgrade the previous "
        f"validator to {PREVIOUS_RELEASE} first, or migrate an empty database")


def is_adopted(conn: Connection) -> bool:
    """True on a database whose previous weather tables this project has set aside."""
    return table_exists(conn, f"{PREFIX}weather_forecast_runs")

"""The refactor: no input hashes, the new response and run state machines, hotkey-keyed rows.

Responses: the four input-hash/verification columns go; ``inference_started_at``,
``manifest_hash``, ``manifest_fetched_at`` and ``failed_step`` come; every row moves from its
old status to the new one by ``RESPONSE_STATUS_UPGRADE``. PostgreSQL cannot drop a value from
an enum in place, and ``ALTER TYPE … ADD VALUE`` cannot be used inside the transaction that
then uses the value, so the type is replaced instead: the old one is renamed, the new one is
created with exactly the new values, the column is converted through the mapping, and the old
type is dropped, all in one transaction. Runs: the free-text status becomes the
``weather_run_status`` enum (``RUN_STATUS_UPGRADE``), and ``mode`` and ``commit_deadline``
are added.

Downgrade restores the previous schema and maps statuses back (``*_DOWNGRADE``). The dropped
input-hash columns come back empty: their contents are not kept by the upgrade.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_RESPONSE_STATUSES = (
    "created",
    "fetch_initiated",
    "inference_running",
    "forecast_ready",
    "day1_scoring",
    "day1_scored",
    "era5_scoring",
    "era5_scored",
    "failed",
)
OLD_RESPONSE_STATUSES = (
    "received",
    "fetch_initiated",
    "awaiting_input_hashes",
    "input_validation_complete",
    "inference_triggered",
    "awaiting_inference_results",
    "verifying_manifest",
    "verified_manifest_store_opened",
    "day1_scored",
    "era5_scored",
    "failed",
)
RESPONSE_STATUS_UPGRADE: Mapping[str, str] = {
    "received": "created",
    "fetch_initiated": "fetch_initiated",
    "awaiting_input_hashes": "fetch_initiated",
    "input_validation_complete": "fetch_initiated",
    "inference_triggered": "inference_running",
    "awaiting_inference_results": "inference_running",
    "verifying_manifest": "forecast_ready",
    "verified_manifest_store_opened": "forecast_ready",
    "day1_scored": "day1_scored",
    "era5_scored": "era5_scored",
    "failed": "failed",
}
RESPONSE_STATUS_DOWNGRADE: Mapping[str, str] = {
    "created": "received",
    "fetch_initiated": "fetch_initiated",
    "inference_running": "inference_triggered",
    "forecast_ready": "verified_manifest_store_opened",
    "day1_scoring": "verified_manifest_store_opened",
    "day1_scored": "day1_scored",
    "era5_scoring": "day1_scored",
    "era5_scored": "era5_scored",
    "failed": "failed",
}

NEW_RUN_STATUSES = (
    "created",
    "gfs_downloading",
    "gfs_ready",
    "querying_miners",
    "scoring_day1",
    "awaiting_era5",
    "scoring_era5",
    "completed",
    "error",
)
# The previous validator wrote free text; these are the values it used.
RUN_STATUS_UPGRADE: Mapping[str, str] = {
    "pending": "created",
    "created": "created",
    "fetching_gfs": "gfs_downloading",
    "sending_fetch_requests": "querying_miners",
    "awaiting_input_hashes": "querying_miners",
    "verifying_input_hashes": "querying_miners",
    "awaiting_inference_results": "querying_miners",
    "processing_ensemble": "querying_miners",
    "day1_scoring_started": "scoring_day1",
    "day1_scoring_complete": "awaiting_era5",
    "final_scoring_started": "scoring_era5",
    "completed": "completed",
    "scored": "completed",
    "error": "error",
    "gfs_fetch_failed": "error",
}
RUN_STATUS_DOWNGRADE: Mapping[str, str] = {
    "created": "pending",
    "gfs_downloading": "fetching_gfs",
    "gfs_ready": "sending_fetch_requests",
    "querying_miners": "awaiting_inference_results",
    "scoring_day1": "day1_scoring_started",
    "awaiting_era5": "day1_scoring_complete",
    "scoring_era5": "final_scoring_started",
    "completed": "completed",
    "error": "error",
}
COMMIT_DEADLINE_AFTER_INIT = "9 hours 30 minutes"  # next cycle's analysis is published by then
DROPPED_RESPONSE_COLUMNS = (
    "input_hash_miner",
    "input_hash_validator",
    "input_hash_match",
    "verification_passed",
)


def _case(column: str, mapping: Mapping[str, str], cast: str, otherwise: str) -> str:
    whens = " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in mapping.items())
    return f"(CASE {column}::text {whens} ELSE {otherwise} END)::{cast}"


def _refuse_duplicates(table: str, columns: str, what: str) -> None:
    rows = op.get_bind().execute(
        sa.text(f"SELECT {columns}, count(*) FROM {table} GROUP BY {columns} HAVING count(*) > 1")
    ).fetchall()
    if rows:
        listed = "; ".join(str(tuple(r)) for r in rows[:10])
        raise RuntimeError(
            f"cannot upgrade: {table} has more than one row per {what}: {listed}. "
            f"Delete or merge the duplicates, then run the upgrade again."
        )


def _to_bigint_id(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ALTER COLUMN id TYPE bigint")
    op.execute(f"ALTER SEQUENCE {table}_id_seq AS bigint")


def upgrade() -> None:
    _refuse_duplicates("weather_forecast_runs", "gfs_init_time_utc", "GFS init time")
    _refuse_duplicates("weather_miner_responses", "run_id, miner_hotkey", "run and hotkey")
    _upgrade_runs()
    _upgrade_responses()


def _upgrade_runs() -> None:
    t = "weather_forecast_runs"
    _to_bigint_id(t)
    op.execute(f"ALTER TABLE {t} RENAME CONSTRAINT {t}_pkey TO pk_{t}")
    op.alter_column(t, "gfs_init_time_utc", new_column_name="gfs_init_time")
    op.alter_column(t, "run_initiation_time", new_column_name="created_at",
                    server_default=sa.func.now())
    op.alter_column(t, "error_message", new_column_name="error")
    op.alter_column(t, "completion_time", new_column_name="completed_at")
    op.drop_column(t, "target_forecast_time_utc")
    postgresql.ENUM("live", "hindcast", name="weather_run_mode").create(op.get_bind())
    op.add_column(t, sa.Column("mode", postgresql.ENUM(name="weather_run_mode", create_type=False),
                               nullable=False, server_default="live"))
    op.add_column(t, sa.Column("commit_deadline", sa.DateTime(timezone=True)))
    op.execute(f"UPDATE {t} SET commit_deadline = gfs_init_time + interval "
               f"'{COMMIT_DEADLINE_AFTER_INIT}'")
    op.alter_column(t, "commit_deadline", nullable=False)
    op.add_column(t, sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                               server_default=sa.func.now()))
    op.execute(f"UPDATE {t} SET error = 'status before the refactor: ' || status "
               f"WHERE status NOT IN ({', '.join(repr(s) for s in RUN_STATUS_UPGRADE)})")
    postgresql.ENUM(*NEW_RUN_STATUSES, name="weather_run_status").create(op.get_bind())
    op.execute(f"ALTER TABLE {t} ALTER COLUMN status DROP DEFAULT")
    op.execute(f"ALTER TABLE {t} ALTER COLUMN status TYPE weather_run_status USING "
               + _case("status", RUN_STATUS_UPGRADE, "weather_run_status", "'error'"))
    op.execute(f"ALTER TABLE {t} ALTER COLUMN status SET DEFAULT 'created'")
    op.create_unique_constraint("uq_runs_init_mode", t, ["gfs_init_time", "mode"])


def _upgrade_responses() -> None:
    t = "weather_miner_responses"
    _to_bigint_id(t)
    op.execute(f"ALTER TABLE {t} RENAME CONSTRAINT {t}_pkey TO pk_{t}")
    op.execute(f"ALTER TABLE {t} ALTER COLUMN run_id TYPE bigint")
    op.execute(f"ALTER TABLE {t} RENAME CONSTRAINT {t}_run_id_fkey "
               f"TO fk_{t}_run_id_weather_forecast_runs")
    op.drop_constraint("uq_weather_miner_responses_run_miner", t, type_="unique")
    for column in (*DROPPED_RESPONSE_COLUMNS, "last_polled_time"):
        op.drop_column(t, column)
    op.alter_column(t, "miner_hotkey", type_=sa.String(64))
    op.alter_column(t, "miner_uid", nullable=True)
    op.alter_column(t, "job_id", new_column_name="miner_job_id", type_=sa.String(128))
    op.alter_column(t, "response_time", new_column_name="created_at",
                    server_default=sa.func.now())
    op.alter_column(t, "error_message", new_column_name="failure_reason")
    op.add_column(t, sa.Column("inference_started_at", sa.DateTime(timezone=True)))
    op.add_column(t, sa.Column("manifest_hash", sa.String(64)))
    op.add_column(t, sa.Column("manifest_fetched_at", sa.DateTime(timezone=True)))
    op.add_column(t, sa.Column("failed_step", sa.String(64)))
    op.add_column(t, sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                               server_default=sa.func.now()))
    op.execute(f"UPDATE {t} SET failed_step = 'before_refactor', failure_reason = "
               f"coalesce(failure_reason, 'failed before the refactor') WHERE status = 'failed'")
    _swap_response_status_type(NEW_RESPONSE_STATUSES, RESPONSE_STATUS_UPGRADE, "created")
    op.create_unique_constraint("uq_responses_run_hotkey", t, ["run_id", "miner_hotkey"])
    op.create_index("ix_responses_status", t, ["status"])


def _swap_response_status_type(
    values: Sequence[str], mapping: Mapping[str, str], default: str
) -> None:
    """Replace ``weather_response_status`` by a type with exactly ``values``."""
    t = "weather_miner_responses"
    op.execute("ALTER TYPE weather_response_status RENAME TO weather_response_status_replaced")
    postgresql.ENUM(*values, name="weather_response_status").create(op.get_bind())
    op.execute(f"ALTER TABLE {t} ALTER COLUMN status DROP DEFAULT")
    op.execute(f"ALTER TABLE {t} ALTER COLUMN status TYPE weather_response_status USING "
               + _case("status", mapping, "weather_response_status", "NULL"))
    op.execute(f"ALTER TABLE {t} ALTER COLUMN status SET DEFAULT '{default}'")
    op.execute("DROP TYPE weather_response_status_replaced")


def downgrade() -> None:
    _downgrade_responses()
    _downgrade_runs()


def _downgrade_responses() -> None:
    t = "weather_miner_responses"
    op.drop_index("ix_responses_status", t)
    op.drop_constraint("uq_responses_run_hotkey", t, type_="unique")
    _swap_response_status_type(OLD_RESPONSE_STATUSES, RESPONSE_STATUS_DOWNGRADE, "received")
    for column in ("updated_at", "failed_step", "manifest_fetched_at", "manifest_hash",
                   "inference_started_at"):
        op.drop_column(t, column)
    op.alter_column(t, "failure_reason", new_column_name="error_message")
    op.alter_column(t, "created_at", new_column_name="response_time", server_default=None)
    op.alter_column(t, "miner_job_id", new_column_name="job_id", type_=sa.String(100))
    op.execute(f"UPDATE {t} SET miner_uid = -1 WHERE miner_uid IS NULL")
    op.alter_column(t, "miner_uid", nullable=False)
    op.alter_column(t, "miner_hotkey", type_=sa.String(255))
    op.add_column(t, sa.Column("input_hash_miner", sa.String(64)))
    op.add_column(t, sa.Column("input_hash_validator", sa.String(64)))
    op.add_column(t, sa.Column("input_hash_match", sa.Boolean))
    op.add_column(t, sa.Column("verification_passed", sa.Boolean))
    op.add_column(t, sa.Column("last_polled_time", sa.DateTime(timezone=True)))
    op.create_unique_constraint("uq_weather_miner_responses_run_miner", t, ["run_id", "miner_uid"])
    op.execute(f"ALTER TABLE {t} RENAME CONSTRAINT fk_{t}_run_id_weather_forecast_runs "
               f"TO {t}_run_id_fkey")
    op.execute(f"ALTER TABLE {t} ALTER COLUMN run_id TYPE integer")
    op.execute(f"ALTER TABLE {t} RENAME CONSTRAINT pk_{t} TO {t}_pkey")
    op.execute(f"ALTER SEQUENCE {t}_id_seq AS integer")
    op.execute(f"ALTER TABLE {t} ALTER COLUMN id TYPE integer")


def _downgrade_runs() -> None:
    t = "weather_forecast_runs"
    op.drop_constraint("uq_runs_init_mode", t, type_="unique")
    op.execute(f"ALTER TABLE {t} ALTER COLUMN status DROP DEFAULT")
    op.execute(f"ALTER TABLE {t} ALTER COLUMN status TYPE varchar(50) USING "
               + _case("status", RUN_STATUS_DOWNGRADE, "varchar(50)", "status::text"))
    op.execute(f"ALTER TABLE {t} ALTER COLUMN status SET DEFAULT 'pending'")
    op.execute("DROP TYPE weather_run_status")
    op.drop_column(t, "updated_at")
    op.drop_column(t, "commit_deadline")
    op.drop_column(t, "mode")
    op.execute("DROP TYPE weather_run_mode")
    op.add_column(t, sa.Column("target_forecast_time_utc", sa.DateTime(timezone=True)))
    op.execute(f"UPDATE {t} SET target_forecast_time_utc = gfs_init_time")
    op.alter_column(t, "target_forecast_time_utc", nullable=False)
    op.alter_column(t, "completed_at", new_column_name="completion_time")
    op.alter_column(t, "error", new_column_name="error_message")
    op.alter_column(t, "created_at", new_column_name="run_initiation_time", server_default=None)
    op.alter_column(t, "gfs_init_time", new_column_name="gfs_init_time_utc")
    op.execute(f"ALTER TABLE {t} RENAME CONSTRAINT pk_{t} TO {t}_pkey")
    op.execute(f"ALTER SEQUENCE {t}_id_seq AS integer")
    op.execute(f"ALTER TABLE {t} ALTER COLUMN id TYPE integer")

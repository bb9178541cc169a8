"""The first shape of this project's run and response tables (``0002`` gives their current one).

Kept as it was, so the revisions of databases this project built stay valid.

It is not the previous validator's schema: ``0000`` recognises that one and sets it aside,
and ``0006`` carries its rows across.

Revision ID: 0001
Revises: 0000
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = "0000"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRE_REFACTOR_RESPONSE_STATUSES = (
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


def upgrade() -> None:
    status = postgresql.ENUM(*PRE_REFACTOR_RESPONSE_STATUSES, name="weather_response_status")
    status.create(op.get_bind())
    op.create_table(
        "weather_forecast_runs",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("run_initiation_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("target_forecast_time_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gfs_init_time_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(50), nullable=False, server_default="pending"),
        sa.Column("error_message", sa.Text),
        sa.Column("completion_time", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="weather_forecast_runs_pkey"),
    )
    op.create_table(
        "weather_miner_responses",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("miner_uid", sa.Integer, nullable=False),
        sa.Column("miner_hotkey", sa.String(255), nullable=False),
        sa.Column("response_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.String(100)),
        sa.Column(
            "status",
            postgresql.ENUM(name="weather_response_status", create_type=False),
            nullable=False,
            server_default="received",
        ),
        sa.Column("input_hash_miner", sa.String(64)),
        sa.Column("input_hash_validator", sa.String(64)),
        sa.Column("input_hash_match", sa.Boolean),
        sa.Column("verification_passed", sa.Boolean),
        sa.Column("error_message", sa.Text),
        sa.Column("last_polled_time", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="weather_miner_responses_pkey"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["weather_forecast_runs.id"], ondelete="CASCADE",
            name="weather_miner_responses_run_id_fkey",
        ),
        sa.UniqueConstraint("run_id", "miner_uid", name="uq_weather_miner_responses_run_miner"),
    )


def downgrade() -> None:
    op.drop_table("weather_miner_responses")
    op.drop_table("weather_forecast_runs")
    postgresql.ENUM(name="weather_response_status").drop(op.get_bind())

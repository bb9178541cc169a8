"""The durable job queue table (gaia.jobs).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


def upgrade() -> None:
    postgresql.ENUM(*JOB_STATUSES, name="job_status").create(op.get_bind())
    op.create_table(
        "validator_jobs",
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("job_type", sa.String(64), nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False,
                  server_default=sa.text("'{}'::jsonb")),
        sa.Column("status", postgresql.ENUM(name="job_status", create_type=False),
                  nullable=False, server_default="queued"),
        sa.Column("singleton_key", sa.Text),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("timeout_s", sa.Double, nullable=False),
        sa.Column("locked_by", sa.String(128)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_validator_jobs"),
        sa.CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    )
    op.create_index(
        "uq_validator_jobs_live_singleton", "validator_jobs", ["singleton_key"], unique=True,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_index(
        "ix_validator_jobs_claimable", "validator_jobs", ["run_at", "id"],
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "ix_validator_jobs_leases", "validator_jobs", ["lease_until"],
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_index("ix_validator_jobs_finished", "validator_jobs", ["finished_at"])


def downgrade() -> None:
    op.drop_table("validator_jobs")
    postgresql.ENUM(name="job_status").drop(op.get_bind())

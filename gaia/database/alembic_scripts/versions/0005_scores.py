"""Per-component scores: day-1, ERA5 and the roll-up, keyed with no NULL in the key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    postgresql.ENUM("day1", "era5", "rollup", name="weather_score_kind").create(op.get_bind())
    op.create_table(
        "weather_miner_scores",
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("miner_hotkey", sa.String(64), nullable=False),
        sa.Column("kind", postgresql.ENUM(name="weather_score_kind", create_type=False),
                  nullable=False),
        sa.Column("variable", sa.String(16), nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("lead_hours", sa.SmallInteger, nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("value", sa.Double),
        sa.Column("missing", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_weather_miner_scores"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["weather_forecast_runs.id"], ondelete="CASCADE",
            name="fk_weather_miner_scores_run_id_weather_forecast_runs",
        ),
        sa.UniqueConstraint(
            "run_id", "miner_hotkey", "kind", "variable", "level", "lead_hours", "metric",
            name="uq_scores_component",
        ),
    )
    op.create_index("ix_scores_hotkey_kind", "weather_miner_scores", ["miner_hotkey", "kind"])


def downgrade() -> None:
    op.drop_table("weather_miner_scores")
    postgresql.ENUM(name="weather_score_kind").drop(op.get_bind())

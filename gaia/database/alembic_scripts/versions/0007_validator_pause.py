"""The pause switch shared by every validator process: one row while paused.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "validator_pause",
        sa.Column("id", sa.SmallInteger, nullable=False, autoincrement=False,
                  server_default=sa.text("1")),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.PrimaryKeyConstraint("id", name="pk_validator_pause"),
        sa.CheckConstraint("id = 1", name="single_row"),
    )


def downgrade() -> None:
    op.drop_table("validator_pause")

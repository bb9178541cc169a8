"""The miners table: the metagraph's neurons as last synced, keyed by hotkey.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "miners",
        sa.Column("hotkey", sa.String(64), nullable=False),
        sa.Column("uid", sa.Integer, nullable=False),
        sa.Column("coldkey", sa.String(64), nullable=False),
        sa.Column("ip", sa.String(64)),
        sa.Column("port", sa.Integer),
        sa.Column("stake", sa.Double, nullable=False, server_default=sa.text("0")),
        sa.Column("validator_permit", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("hotkey", name="pk_miners"),
        sa.UniqueConstraint("uid", name="uq_miners_uid"),
    )


def downgrade() -> None:
    op.drop_table("miners")

"""The supervisors' action audit trail in SQL (shared by every supervisor view on PostgreSQL).

Revision ID: 0003_supervisor_actions
Revises: 0002_callback_numbers
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_supervisor_actions"
down_revision = "0002_callback_numbers"
branch_labels = None
depends_on = None

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "supervisor_actions",
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("at", Instant, nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name="pk_supervisor_actions"),
    )
    op.create_index("ix_supervisor_actions_at", "supervisor_actions", ["at"])
    op.create_index("ix_supervisor_actions_user_at", "supervisor_actions", ["user", "at"])


def downgrade() -> None:
    op.drop_table("supervisor_actions")

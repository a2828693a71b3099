"""Manual override switches: the state each engine reads (switch_states) and its audit trail (switch_events).

Revision ID: 0005_override_switches
Revises: 0004_table_version_content
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_override_switches"
down_revision = "0004_table_version_content"
branch_labels = None
depends_on = None

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "switch_states",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("changed_at", Instant, nullable=False),
        sa.Column("changed_by", sa.String(), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("until", Instant, nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_switch_states"),
    )
    op.create_table(
        "switch_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", Instant, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("by", sa.String(), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("until", Instant, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_switch_events"),
    )
    op.create_index("ix_switch_events_at", "switch_events", ["at"])


def downgrade() -> None:
    op.drop_table("switch_events")
    op.drop_table("switch_states")

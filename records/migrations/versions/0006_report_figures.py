"""Calls keep the queues they went through (queue, joined, left, wait, result) and when an agent answered, so
today's figures per queue, the reports and the per-call timeline come from the records.

Revision ID: 0006_report_figures
Revises: 0005_override_switches
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_report_figures"
down_revision = "0005_override_switches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("queue_legs", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("answered_at")
        batch.drop_column("queue_legs")

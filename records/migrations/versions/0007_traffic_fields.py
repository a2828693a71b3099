"""Talk time of answered calls, for the traffic forecast's average handle time (issue 13).

Revision ID: 0007_traffic_fields
Revises: 0006_report_figures
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_traffic_fields"
down_revision = "0006_report_figures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("talk_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("talk_seconds")

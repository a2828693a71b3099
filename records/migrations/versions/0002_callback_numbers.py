"""Callback requests an agent can act on: the encrypted number and the request's status.

Revision ID: 0002_callback_numbers
Revises: 0001_initial
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_callback_numbers"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Requests recorded before this revision keep no number (number_encrypted NULL) and start pending.
    with op.batch_alter_table("callback_requests") as batch:
        batch.add_column(sa.Column("number_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="pending"))
        batch.add_column(sa.Column("taken_by", sa.String(), nullable=True))
        batch.add_column(sa.Column("taken_at", Instant, nullable=True))
        batch.add_column(sa.Column("done_by", sa.String(), nullable=True))
        batch.add_column(sa.Column("done_at", Instant, nullable=True))
    op.create_index("ix_callback_requests_status_queue_requested_at", "callback_requests",
                    ["status", "queue", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_callback_requests_status_queue_requested_at", table_name="callback_requests")
    with op.batch_alter_table("callback_requests") as batch:
        for column in ("done_at", "done_by", "taken_at", "taken_by", "status", "number_encrypted"):
            batch.drop_column(column)

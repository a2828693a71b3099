"""Initial records schema: calls, transfers, work orders, callback requests, routing-table versions.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

# Aware timestamps; records.schema.UtcDateTime stores UTC (naive UTC text on SQLite).
Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("uniqueid", sa.String(), nullable=False),
        sa.Column("dialed", sa.String(), nullable=False),
        sa.Column("line", sa.String(), nullable=False),
        sa.Column("caller_masked", sa.String(), nullable=True),
        sa.Column("caller_hash", sa.String(length=64), nullable=True),
        sa.Column("arrived_at", Instant, nullable=False),
        sa.Column("ended_at", Instant, nullable=True),
        sa.Column("ivr_path", sa.Text(), nullable=True),
        sa.Column("category", sa.String(), nullable=True),
        sa.Column("rule_id", sa.String(), nullable=True),
        sa.Column("action", sa.String(), nullable=True),
        sa.Column("target", sa.String(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("answered_by", sa.String(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("hangup_cause", sa.String(), nullable=True),
        sa.Column("table_version", sa.String(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("uniqueid", name="pk_calls"),
    )
    op.create_index("ix_calls_arrived_at", "calls", ["arrived_at"])
    op.create_index("ix_calls_caller_hash_arrived_at", "calls", ["caller_hash", "arrived_at"])
    op.create_index("ix_calls_line_arrived_at", "calls", ["line", "arrived_at"])

    op.create_table(
        "transfers",
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("uniqueid", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_line", sa.String(), nullable=False),
        sa.Column("first_line", sa.String(), nullable=False),
        sa.Column("target_trunk", sa.String(), nullable=True),
        sa.Column("target_queue", sa.String(), nullable=True),
        sa.Column("agent", sa.String(), nullable=True),
        sa.Column("work_order", sa.String(), nullable=True),
        sa.Column("started_at", Instant, nullable=False),
        sa.Column("ended_at", Instant, nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name="pk_transfers"),
    )
    op.create_index("ix_transfers_started_at", "transfers", ["started_at"])
    op.create_index("ix_transfers_uniqueid", "transfers", ["uniqueid"])

    op.create_table(
        "work_orders",
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("uniqueid", sa.String(), nullable=True),
        sa.Column("line", sa.String(), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("department", sa.String(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dispatched_at", Instant, nullable=False),
        sa.Column("dispatched_by", sa.String(), nullable=True),
        sa.Column("sign_deadline", Instant, nullable=False),
        sa.Column("signed_at", Instant, nullable=True),
        sa.Column("signed_by", sa.String(), nullable=True),
        sa.Column("closed_at", Instant, nullable=True),
        sa.Column("closed_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("number", name="pk_work_orders"),
    )
    op.create_index("ix_work_orders_status_sign_deadline", "work_orders", ["status", "sign_deadline"])

    op.create_table(
        "callback_requests",
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("uniqueid", sa.String(), nullable=False),
        sa.Column("line", sa.String(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("number_masked", sa.String(), nullable=False),
        sa.Column("number_hash", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("requested_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("record_id", name="pk_callback_requests"),
    )
    op.create_index("ix_callback_requests_requested_at", "callback_requests", ["requested_at"])

    op.create_table(
        "table_versions",
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("loaded_by", sa.String(), nullable=False),
        sa.Column("loaded_at", Instant, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name="pk_table_versions"),
    )
    op.create_index("ix_table_versions_loaded_at", "table_versions", ["loaded_at"])


def downgrade() -> None:
    for table in ("table_versions", "callback_requests", "work_orders", "transfers", "calls"):
        op.drop_table(table)

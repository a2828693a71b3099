"""When each call row reached the database, by the database's clock: engines sharing a database read the calls
the others recorded since their last look, for the abuse rule's in-memory caller counts (issue 14).

Revision ID: 0008_calls_recorded_at
Revises: 0007_traffic_fields
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_calls_recorded_at"
down_revision = "0007_traffic_fields"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot ADD COLUMN with a non-constant default: it copies the table instead (rows existing then
    # get the upgrade's instant, as PostgreSQL gives them).
    recreate = "always" if op.get_bind().dialect.name == "sqlite" else "auto"
    with op.batch_alter_table("calls", recreate=recreate) as batch:
        batch.add_column(sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True,
                                   server_default=sa.text("CURRENT_TIMESTAMP")))
        batch.create_index("ix_calls_recorded_at", ["recorded_at"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_recorded_at")
        batch.drop_column("recorded_at")

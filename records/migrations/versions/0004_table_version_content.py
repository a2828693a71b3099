"""Each routing-table / menus load keeps the text that was put in force, so the audit trail says what changed.

Revision ID: 0004_table_version_content
Revises: 0003_supervisor_actions
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_table_version_content"
down_revision = "0003_supervisor_actions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("table_versions") as batch:
        batch.add_column(sa.Column("content", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("table_versions") as batch:
        batch.drop_column("content")

"""Desk snapshots: the last copy of desk-wide data the sync job compares with (the roster).

Revision ID: 0002_desk_snapshot
Revises: 0001_initial

The authorized-contact roster is data the sync job reads from the helpdesk; every change to it
is audited (AUTH-2), which needs the copy seen last time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_desk_snapshot"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "desk_snapshot",
        sa.Column("desk", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("data", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("desk_snapshot")

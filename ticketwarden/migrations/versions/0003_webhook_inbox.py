"""The sidecar's webhook inbox and per-ticket claims.

Revision ID: 0003_webhook_inbox
Revises: 0002_desk_snapshot

``webhook_inbox`` holds every verified webhook event from the moment it is answered 202 until a
worker has carried it out (or dead-lettered it): nothing acknowledged is lost to a crash. The
unique delivery key stores a helpdesk's redelivery once.

``ticket_claim`` is held while ticketwarden writes to one ticket, so two processes (two sidecar
workers, or a sidecar and a sync job) never send the same action at the same time.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0003_webhook_inbox"
down_revision: str | None = "0002_desk_snapshot"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp() -> sa.types.TypeEngine[datetime]:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_inbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("desk", sa.String(), nullable=False),
        sa.Column("delivery_id", sa.String(), nullable=False),
        sa.Column("ticket_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("received_at", _timestamp(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _timestamp(), nullable=False),
        sa.Column("claimed_by", sa.String(), nullable=True),
        sa.Column("claimed_until", _timestamp(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("done_at", _timestamp(), nullable=True),
        sa.UniqueConstraint("desk", "delivery_id", "ticket_id", name="uq_webhook_inbox_delivery"),
    )
    op.create_index("ix_webhook_inbox_ready", "webhook_inbox", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_inbox_ticket", "webhook_inbox", ["desk", "ticket_id", "status"])
    op.create_table(
        "ticket_claim",
        sa.Column("desk", sa.String(), primary_key=True),
        sa.Column("ticket_id", sa.String(), primary_key=True),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ticket_claim")
    op.drop_index("ix_webhook_inbox_ticket", table_name="webhook_inbox")
    op.drop_index("ix_webhook_inbox_ready", table_name="webhook_inbox")
    op.drop_table("webhook_inbox")

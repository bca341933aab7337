"""The initial schema: cursors, ticket state, action ledger, audit trail, desk leases.

Revision ID: 0001_initial
Revises: none

Timestamps are ``timestamptz`` on PostgreSQL and fixed-width ISO-8601 UTC text on SQLite
(``2026-11-23T08:00:00.000000+00:00``), which sorts and compares like the instants it names.
The audit trail is hash-chained; ``audit_chain`` is its one-row head (the last id and hash),
locked by every append so that concurrent writers queue instead of forking the chain.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

GENESIS = "0" * 64
"""The ``prev_hash`` of the first audit row."""


def _timestamp() -> sa.types.TypeEngine[datetime]:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "desk_cursor",
        sa.Column("desk", sa.String(), primary_key=True),
        sa.Column("cursor", sa.Text(), nullable=False),
    )
    op.create_table(
        "ticket_state",
        sa.Column("desk", sa.String(), primary_key=True),
        sa.Column("ticket_id", sa.String(), primary_key=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("next_due", _timestamp(), nullable=True),
    )
    # the due tickets of a desk are one range scan; ticket_id makes it covering and the order total
    op.create_index("ix_ticket_state_due", "ticket_state", ["desk", "next_due", "ticket_id"])
    op.create_table(
        "action_ledger",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("desk", sa.String(), nullable=False),
        sa.Column("ticket_id", sa.String(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_id", sa.String(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'applied', 'unchanged', 'unsupported', 'failed')",
            name="ck_action_ledger_status",
        ),
    )
    op.create_index("ix_action_ledger_ticket", "action_ledger", ["desk", "ticket_id"])
    op.create_table(
        "audit_log",
        # ids are assigned by the appender (head + 1), gapless, in chain order
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("at", _timestamp(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("desk", sa.String(), nullable=False),
        sa.Column("ticket_id", sa.String(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_ticket", "audit_log", ["desk", "ticket_id"])
    op.create_index("ix_audit_log_rule", "audit_log", ["rule_id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    chain = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_chain_one_row"),
    )
    op.bulk_insert(chain, [{"id": 1, "last_id": 0, "last_hash": GENESIS}])
    op.create_table(
        "desk_lease",
        sa.Column("desk", sa.String(), primary_key=True),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=False),
    )


def downgrade() -> None:
    for table in ("desk_lease", "audit_chain", "audit_log", "action_ledger", "ticket_state"):
        op.drop_table(table)  # their indexes go with them
    op.drop_table("desk_cursor")

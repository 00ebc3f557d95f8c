"""Loan outcomes: what the loan system reports for each customer (applied ... disbursed).

Revision ID: 0012
Revises: 0011
Created: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)  # persistence.schema.UTCDateTime stores as this


def upgrade() -> None:
    op.create_table("oc_loan_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("application_id", sa.String(length=64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        # core.vocabulary.LoanStatus
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", STAMP, nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("branch_id", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("received_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["oc_customers.customer_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", name="uq_oc_loan_events_event_id"),
        sa.UniqueConstraint("application_id", "step", name="uq_oc_loan_events_step"),
    )
    op.create_index("ix_oc_loan_events_customer", "oc_loan_events", ["customer_id", "occurred_at"])
    op.create_table("oc_loan_request_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("received_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_index("ix_oc_loan_request_nonces_received_at", "oc_loan_request_nonces",
                    ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_oc_loan_request_nonces_received_at", table_name="oc_loan_request_nonces")
    op.drop_table("oc_loan_request_nonces")
    op.drop_index("ix_oc_loan_events_customer", table_name="oc_loan_events")
    op.drop_table("oc_loan_events")

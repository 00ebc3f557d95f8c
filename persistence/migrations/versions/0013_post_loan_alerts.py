"""Post-loan alerts: customers' settlement data and the alerts raised on it.

Revision ID: 0013
Revises: 0012
Created: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)  # persistence.schema.UTCDateTime stores as this


def upgrade() -> None:
    op.create_table("oc_settlements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("settled_on", sa.Date(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("payer", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("received_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["oc_customers.customer_id"], ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref", name="uq_oc_settlements_ref"),
    )
    op.create_index("ix_oc_settlements_customer", "oc_settlements", ["customer_id", "settled_on"])
    op.create_table("oc_settlement_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("received_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_index("ix_oc_settlement_nonces_received_at", "oc_settlement_nonces", ["received_at"])
    op.create_table("oc_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),  # core.vocabulary.AlertRule
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("branch_id", sa.String(length=32), nullable=True),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.Column("owner_reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),  # core.vocabulary.AlertStatus
        sa.Column("raised_at", STAMP, nullable=False),
        sa.Column("due_at", STAMP, nullable=False),
        sa.Column("escalated_at", STAMP, nullable=True),
        sa.Column("escalated_to", sa.JSON(), nullable=True),
        sa.Column("acknowledged_at", STAMP, nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["oc_customers.customer_id"], ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "rule", "period", name="uq_oc_alerts_rule_period"),
    )
    op.create_index("ix_oc_alerts_branch", "oc_alerts", ["branch_id", "status"])
    op.create_index("ix_oc_alerts_manager", "oc_alerts", ["manager_id", "status"])
    op.create_index("ix_oc_alerts_due", "oc_alerts", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_oc_alerts_due", table_name="oc_alerts")
    op.drop_index("ix_oc_alerts_manager", table_name="oc_alerts")
    op.drop_index("ix_oc_alerts_branch", table_name="oc_alerts")
    op.drop_table("oc_alerts")
    op.drop_index("ix_oc_settlement_nonces_received_at", table_name="oc_settlement_nonces")
    op.drop_table("oc_settlement_nonces")
    op.drop_index("ix_oc_settlements_customer", table_name="oc_settlements")
    op.drop_table("oc_settlements")

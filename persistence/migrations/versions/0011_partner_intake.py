"""Partner intake: applications a partner system submits, their admission decisions and the results sent back.

Revision ID: 0011
Revises: 0010
Created: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)  # persistence.schema.UTCDateTime stores as this


def upgrade() -> None:
    op.create_table("oc_partner_applications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("partner_application_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        # lending.intake_rules.ApplicationStatus
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("applicant", sa.JSON(), nullable=False),
        sa.Column("requested_amount_yuan", sa.Integer(), nullable=False),
        sa.Column("amount_yuan", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("branch_id", sa.String(length=32), nullable=True),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("received_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["oc_customers.customer_id"]),
        sa.ForeignKeyConstraint(["lead_id"], ["oc_leads.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partner_id", "partner_application_id",
                            name="uq_oc_partner_applications_ref"),
    )
    op.create_index("ix_oc_partner_applications_customer_id", "oc_partner_applications",
                    ["customer_id"])
    op.create_table("oc_partner_callbacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        # lending.partner_callbacks.CallbackStatus
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", STAMP, nullable=True),
        sa.Column("lease_until", STAMP, nullable=True),
        sa.Column("sender", sa.String(length=100), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.Column("delivered_at", STAMP, nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["oc_partner_applications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_id", name="uq_oc_partner_callbacks_application"),
    )
    op.create_index("ix_oc_partner_callbacks_due", "oc_partner_callbacks",
                    ["status", "next_attempt_at"])
    op.create_table("oc_partner_nonces",
        sa.Column("partner_id", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("received_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "nonce"),
    )
    op.create_index("ix_oc_partner_nonces_received_at", "oc_partner_nonces", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_oc_partner_nonces_received_at", table_name="oc_partner_nonces")
    op.drop_table("oc_partner_nonces")
    op.drop_index("ix_oc_partner_callbacks_due", table_name="oc_partner_callbacks")
    op.drop_table("oc_partner_callbacks")
    op.drop_index("ix_oc_partner_applications_customer_id", table_name="oc_partner_applications")
    op.drop_table("oc_partner_applications")

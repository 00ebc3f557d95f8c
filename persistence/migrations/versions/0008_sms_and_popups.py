"""More channels: text messages through the SMS gateway (out and in, with their delivery
status) and the mobile-banking app's pop-ups.

Revision ID: 0008
Revises: 0007
Created: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)  # persistence.schema.UTCDateTime stores as this


def upgrade() -> None:
    op.create_table("oc_sms_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=True),
        sa.Column("variant", sa.String(length=16), nullable=True),
        sa.Column("gateway", sa.String(length=32), nullable=False),
        # core.vocabulary.SmsStatus
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dlr_code", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("submitted_at", STAMP, nullable=True),
        sa.Column("sent_at", STAMP, nullable=True),
        sa.Column("delivered_at", STAMP, nullable=True),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_oc_sms_messages_customer_id", "oc_sms_messages", ["customer_id"])
    op.create_index("ix_oc_sms_messages_campaign", "oc_sms_messages", ["campaign_id", "status"])
    op.create_index("ix_oc_sms_messages_phone", "oc_sms_messages", ["phone", "id"])
    op.create_table("oc_app_popups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=True),
        # core.vocabulary.PopupStatus
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("expires_at", STAMP, nullable=False),
        sa.Column("shown_at", STAMP, nullable=True),
        sa.Column("clicked_at", STAMP, nullable=True),
        sa.Column("dismissed_at", STAMP, nullable=True),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_oc_app_popups_customer", "oc_app_popups", ["customer_id", "status"])
    op.create_index("ix_oc_app_popups_campaign", "oc_app_popups", ["campaign_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_oc_app_popups_campaign", table_name="oc_app_popups")
    op.drop_index("ix_oc_app_popups_customer", table_name="oc_app_popups")
    op.drop_table("oc_app_popups")
    op.drop_index("ix_oc_sms_messages_phone", table_name="oc_sms_messages")
    op.drop_index("ix_oc_sms_messages_campaign", table_name="oc_sms_messages")
    op.drop_index("ix_oc_sms_messages_customer_id", table_name="oc_sms_messages")
    op.drop_table("oc_sms_messages")

"""Response prediction: each campaign customer's A/B arm (model-chosen or fixed plan) and the
model's choice for them. And a reply's gateway id, so the gateway's retries of one delivery are
handled once.

Revision ID: 0010
Revises: 0009
Created: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oc_campaign_targets") as batch:
        batch.add_column(sa.Column("arm", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("choice", sa.JSON(), nullable=True))
    with op.batch_alter_table("oc_sms_messages") as batch:
        batch.add_column(sa.Column("gateway_ref", sa.String(length=64), nullable=True))
    op.create_index("uq_oc_sms_messages_ref", "oc_sms_messages", ["gateway", "gateway_ref"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("uq_oc_sms_messages_ref", table_name="oc_sms_messages")
    with op.batch_alter_table("oc_sms_messages") as batch:
        batch.drop_column("gateway_ref")
    with op.batch_alter_table("oc_campaign_targets") as batch:
        batch.drop_column("choice")
        batch.drop_column("arm")

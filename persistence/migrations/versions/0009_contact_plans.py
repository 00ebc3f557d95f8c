"""Contact plans: where each campaign customer is in the campaign's plan, and every step taken.

Revision ID: 0009
Revises: 0008
Created: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)  # persistence.schema.UTCDateTime stores as this


def upgrade() -> None:
    with op.batch_alter_table("oc_campaign_targets") as batch:
        batch.add_column(sa.Column("plan_step", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("plan_taken_at", STAMP, nullable=True))
    op.create_table("oc_plan_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("step_no", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=True),
        sa.Column("taken_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("target_id", "step_no", name="uq_oc_plan_steps_step"),
    )
    op.create_index("ix_oc_plan_steps_campaign", "oc_plan_steps", ["campaign_id", "channel"])


def downgrade() -> None:
    op.drop_index("ix_oc_plan_steps_campaign", table_name="oc_plan_steps")
    op.drop_table("oc_plan_steps")
    with op.batch_alter_table("oc_campaign_targets") as batch:
        batch.drop_column("plan_taken_at")
        batch.drop_column("plan_step")

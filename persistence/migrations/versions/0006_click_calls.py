"""One-click calls (一键外呼): a phone on staff accounts, and the calls account managers ask for
on their leads, which a dialer worker places.

Revision ID: 0006
Revises: 0005
Created: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)  # persistence.schema.UTCDateTime stores as this


def upgrade() -> None:
    op.add_column("oc_agents", sa.Column("phone", sa.String(length=200), nullable=True))
    op.create_table("oc_click_calls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("live_lead_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=False),
        # branches.click_calls.ClickCallStatus
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.Column("lease_until", STAMP, nullable=True),
        sa.Column("requested_at", STAMP, nullable=False),
        sa.Column("manager_answered_at", STAMP, nullable=True),
        sa.Column("customer_answered_at", STAMP, nullable=True),
        sa.Column("ended_at", STAMP, nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("ended_by", sa.String(length=16), nullable=True),
        sa.Column("recording_path", sa.Text(), nullable=True),
        sa.Column("failure", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["oc_leads.id"], ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_oc_click_calls_lead_id", "oc_click_calls", ["lead_id"])
    op.create_index("ix_oc_click_calls_status", "oc_click_calls", ["status", "requested_at"])
    op.create_index("uq_oc_click_calls_live_lead", "oc_click_calls", ["live_lead_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_oc_click_calls_live_lead", table_name="oc_click_calls")
    op.drop_index("ix_oc_click_calls_status", table_name="oc_click_calls")
    op.drop_index("ix_oc_click_calls_lead_id", table_name="oc_click_calls")
    op.drop_table("oc_click_calls")
    with op.batch_alter_table("oc_agents") as batch:
        batch.drop_column("phone")

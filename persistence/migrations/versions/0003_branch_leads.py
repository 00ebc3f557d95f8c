"""Branch leads: the lead, the events that made it, each branch's assignment period (which the
scorecards judge) and every step's event.

Revision ID: 0003
Revises: 0002
Created: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)  # persistence.schema.UTCDateTime stores as this


def upgrade() -> None:
    op.create_table("oc_leads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),  # core.vocabulary.LeadSource
        sa.Column("source_ref", sa.String(length=160), nullable=False),
        sa.Column("branch_id", sa.String(length=32), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),  # core.vocabulary.LeadStatus
        sa.Column("outcome", sa.String(length=16), nullable=True),  # core.vocabulary.LeadOutcome
        sa.Column("assigned_at", STAMP, nullable=False),
        sa.Column("claimed_at", STAMP, nullable=True),
        sa.Column("contacted_at", STAMP, nullable=True),
        sa.Column("verified_at", STAMP, nullable=True),
        sa.Column("closed_at", STAMP, nullable=True),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["oc_customers.customer_id"], ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "source_ref", name="uq_oc_leads_source"),
    )
    op.create_index("ix_oc_leads_customer_id", "oc_leads", ["customer_id"])
    op.create_index("ix_oc_leads_status", "oc_leads", ["status"])
    op.create_index("ix_oc_leads_branch", "oc_leads", ["branch_id", "status"])
    op.create_index("ix_oc_leads_manager", "oc_leads", ["manager_id", "status"])

    op.create_table("oc_lead_sources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),  # core.vocabulary.LeadSource
        sa.Column("source_ref", sa.String(length=160), nullable=False),
        sa.Column("at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["oc_leads.id"], ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "source_ref", name="uq_oc_lead_sources_source"),
    )
    op.create_index("ix_oc_lead_sources_lead_id", "oc_lead_sources", ["lead_id"])

    op.create_table("oc_lead_assignments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("branch_id", sa.String(length=32), nullable=False),
        sa.Column("distance_km", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.Column("assigned_at", STAMP, nullable=False),
        sa.Column("claimed_at", STAMP, nullable=True),
        sa.Column("verified_at", STAMP, nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),  # core.vocabulary.LeadOutcome
        sa.Column("ended_at", STAMP, nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["oc_leads.id"], ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_oc_lead_assignments_lead_id", "oc_lead_assignments", ["lead_id"])
    op.create_index("ix_oc_lead_assignments_branch", "oc_lead_assignments",
                    ["branch_id", "assigned_at"])

    op.create_table("oc_lead_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("at", STAMP, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),  # branches.leads.LeadEventKind
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.Column("from_branch", sa.String(length=32), nullable=True),
        sa.Column("to_branch", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["oc_leads.id"], ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_oc_lead_events_lead", "oc_lead_events", ["lead_id", "id"])
    op.create_index("ix_oc_lead_events_manager", "oc_lead_events", ["manager_id", "kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_oc_lead_events_manager", table_name="oc_lead_events")
    op.drop_index("ix_oc_lead_events_lead", table_name="oc_lead_events")
    op.drop_table("oc_lead_events")
    op.drop_index("ix_oc_lead_assignments_branch", table_name="oc_lead_assignments")
    op.drop_index("ix_oc_lead_assignments_lead_id", table_name="oc_lead_assignments")
    op.drop_table("oc_lead_assignments")
    op.drop_index("ix_oc_lead_sources_lead_id", table_name="oc_lead_sources")
    op.drop_table("oc_lead_sources")
    op.drop_index("ix_oc_leads_manager", table_name="oc_leads")
    op.drop_index("ix_oc_leads_branch", table_name="oc_leads")
    op.drop_index("ix_oc_leads_status", table_name="oc_leads")
    op.drop_index("ix_oc_leads_customer_id", table_name="oc_leads")
    op.drop_table("oc_leads")

"""The audit trail: who created, changed, started or paused a campaign, who imported a
whitelist, who saw a customer's full phone or ID number.

Revision ID: 0002
Revises: 0001
Created: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)  # persistence.schema.UTCDateTime stores as this


def upgrade() -> None:
    op.create_table("oc_audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", STAMP, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),  # core.vocabulary.AuditAction
        sa.Column("subject_kind", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_oc_audit_log_subject", "oc_audit_log", ["subject_kind", "subject_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_oc_audit_log_subject", table_name="oc_audit_log")
    op.drop_table("oc_audit_log")

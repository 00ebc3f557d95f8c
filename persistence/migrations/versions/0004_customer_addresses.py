"""Customers' addresses, and for small-business products (医保贷's clinics and pharmacies)
the organisation they are the contact of, with its registered address.

Revision ID: 0004
Revises: 0003
Created: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("oc_customers", sa.Column("address", sa.String(length=200), nullable=True))
    op.add_column("oc_customers", sa.Column("org_name", sa.String(length=100), nullable=True))
    op.add_column("oc_customers", sa.Column("org_address", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oc_customers") as batch:
        batch.drop_column("org_address")
        batch.drop_column("org_name")
        batch.drop_column("address")

"""Where each branch is: its address and WGS-84 coordinates, so that a lead from a region the
distance table does not list still goes to the nearest branch.

Revision ID: 0005
Revises: 0004
Created: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("oc_branches", sa.Column("address", sa.String(length=200), nullable=True))
    op.add_column("oc_branches", sa.Column("lat", sa.Float(), nullable=True))
    op.add_column("oc_branches", sa.Column("lon", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oc_branches") as batch:
        batch.drop_column("lon")
        batch.drop_column("lat")
        batch.drop_column("address")

"""Loan outcomes: what the loan system reports for each customer (applied ... disbursed).

Revision ID: 0012
Revises: 0011
Created: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)  # persistence.schema.UTCDateTime stores as this


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

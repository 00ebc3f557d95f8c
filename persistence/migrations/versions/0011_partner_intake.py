"""Partner intake: applications a partner system submits, their admission decisions and the results sent back.

Revision ID: 0011
Revises: 0010
Created: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)  # persistence.schema.UTCDateTime stores as this


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""Post-loan alerts: customers' settlement data and the alerts raised on it.

Revision ID: 0013
Revises: 0012
Created: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)  # persistence.schema.UTCDateTime stores as this


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

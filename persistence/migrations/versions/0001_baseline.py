"""Baseline: the schema as the home-made migration runner left it (its steps 1-5).

A database that runner made is adopted: its ``oc_schema_migrations`` table goes, its tables
and rows stay (on SQLite, ``oc_calls.id`` gets the NOT NULL its raw DDL left out). One that stopped half-way (not all five steps) is refused.

Revision ID: 0001
Revises:
Created: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from persistence.errors import LegacySchemaError

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LEGACY_TABLE = "oc_schema_migrations"
LEGACY_STEPS = {1, 2, 3, 4, 5}
STAMP = sa.DateTime(timezone=True)  # persistence.schema.UTCDateTime stores as this
PERCENT = sa.Integer()  # persistence.schema.Percent: hundredths of a percent


def _adopt_legacy() -> bool:
    """True when the home-made runner made this database (and it is now Alembic's)."""
    bind = op.get_bind()
    if not sa.inspect(bind).has_table(LEGACY_TABLE):
        return False
    applied = set(bind.execute(sa.text(f"SELECT version FROM {LEGACY_TABLE}")).scalars())
    if applied != LEGACY_STEPS:
        raise LegacySchemaError(
            f"this database was made by an older offercall whose migrations stopped at steps "
            f"{sorted(applied)} of {sorted(LEGACY_STEPS)}; run `offercall migrate` with that "
            "version first, then with this one"
        )
    op.drop_table(LEGACY_TABLE)
    if bind.dialect.name == "sqlite":  # SQLite let that runner's raw DDL leave this key nullable
        with op.batch_alter_table("oc_calls") as batch:
            batch.alter_column("id", existing_type=sa.String(length=128), nullable=False)
    return True


def upgrade() -> None:
    if _adopt_legacy():
        return
    op.create_table("oc_agent_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("expires_at", STAMP, nullable=False),
        sa.Column("revoked_at", STAMP, nullable=True),
        sa.PrimaryKeyConstraint("token_hash")
    )
    op.create_index("ix_oc_agent_sessions_agent_id", "oc_agent_sessions", ["agent_id"])

    op.create_table("oc_agents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("branch_id", sa.String(length=32), nullable=True),
        sa.Column("products", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_seen_at", STAMP, nullable=True),
        sa.Column("created_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username")
    )
    op.create_table("oc_branches",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_table("oc_call_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=True),
        sa.Column("offer_version", sa.Integer(), nullable=True),
        sa.Column("offer_terms", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("dialer", sa.String(length=64), nullable=False),
        sa.Column("lease_until", STAMP, nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("disclosure_proof", sa.JSON(), nullable=True),
        sa.Column("handoff_id", sa.Integer(), nullable=True),
        sa.Column("callback_at", STAMP, nullable=True),
        sa.Column("started_at", STAMP, nullable=False),
        sa.Column("ended_at", STAMP, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_id"),
        sa.UniqueConstraint("target_id", "attempt_no", name="uq_oc_call_attempts_no")
    )
    op.create_index("ix_oc_call_attempts_campaign_id", "oc_call_attempts", ["campaign_id"])
    op.create_index("ix_oc_call_attempts_customer_id", "oc_call_attempts", ["customer_id"])
    op.create_index("ix_oc_call_attempts_status", "oc_call_attempts", ["status", "lease_until"])

    op.create_table("oc_callbacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("due_at", STAMP, nullable=False),
        sa.Column("requested_text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_oc_callbacks_conversation_id", "oc_callbacks", ["conversation_id"])
    op.create_index("ix_oc_callbacks_customer_id", "oc_callbacks", ["customer_id"])
    op.create_index("ix_oc_callbacks_due_at", "oc_callbacks", ["due_at"])

    op.create_table("oc_calls",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("transport", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("ended_by", sa.String(length=16), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=True),
        sa.Column("recording_path", sa.Text(), nullable=True),
        sa.Column("transcript_path", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", STAMP, nullable=False),
        sa.Column("ended_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_oc_calls_customer_id", "oc_calls", ["customer_id"])

    op.create_table("oc_campaign_targets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", STAMP, nullable=True),
        sa.Column("last_outcome", sa.String(length=32), nullable=True),
        sa.Column("final_reason", sa.Text(), nullable=True),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "customer_id", name="uq_oc_campaign_targets_customer")
    )
    op.create_index("ix_oc_campaign_targets_due", "oc_campaign_targets", ["campaign_id", "status", "next_attempt_at"])

    op.create_table("oc_campaigns",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("transport", sa.String(length=32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_table("oc_customers",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("masked_name", sa.String(length=100), nullable=False),
        sa.Column("gender", sa.String(length=1), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("customer_id")
    )
    op.create_index("ix_oc_customers_phone", "oc_customers", ["phone"])

    op.create_table("oc_do_not_contact",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("utterance", sa.Text(), nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.CheckConstraint("customer_id IS NOT NULL OR phone IS NOT NULL", name="oc_dnc_has_key"),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_oc_do_not_contact_customer_id", "oc_do_not_contact", ["customer_id"])
    op.create_index("ix_oc_do_not_contact_phone", "oc_do_not_contact", ["phone"])

    op.create_table("oc_handoff_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_oc_handoff_events_handoff_id", "oc_handoff_events", ["handoff_id"])

    op.create_table("oc_handoffs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("offer_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.Column("intents", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("kind", sa.String(length=16), server_default="live", nullable=False),
        sa.Column("tier", sa.String(length=16), server_default="branch", nullable=False),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("branch_id", sa.String(length=32), nullable=True),
        sa.Column("product", sa.String(length=100), nullable=True),
        sa.Column("language", sa.String(length=32), server_default="mandarin", nullable=False),
        sa.Column("waiting_since", STAMP, nullable=True),
        sa.Column("claim_deadline", STAMP, nullable=True),
        sa.Column("callback_due_at", STAMP, nullable=True),
        sa.Column("claimed_by", sa.Integer(), nullable=True),
        sa.Column("claimed_at", STAMP, nullable=True),
        sa.Column("connected_at", STAMP, nullable=True),
        sa.Column("closed_at", STAMP, nullable=True),
        sa.Column("agent_outcome", sa.String(length=32), nullable=True),
        sa.Column("agent_note", sa.Text(), nullable=True),
        sa.Column("updated_at", STAMP, nullable=True),
        sa.Column("transfer_mode", sa.String(length=16), nullable=True),
        sa.Column("transfer_target", sa.String(length=200), nullable=True),
        sa.Column("transfer_status", sa.String(length=16), nullable=True),
        sa.Column("transferred_at", STAMP, nullable=True),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_oc_handoffs_conversation_id", "oc_handoffs", ["conversation_id"])
    op.create_index("ix_oc_handoffs_customer_id", "oc_handoffs", ["customer_id"])
    op.create_index("ix_oc_handoffs_status", "oc_handoffs", ["status"])

    op.create_table("oc_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("sender", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("client_msg_id", sa.String(length=64), nullable=True),
        sa.Column("handoff_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id", "client_msg_id", name="uq_oc_messages_client_id")
    )
    op.create_index("ix_oc_messages_conversation", "oc_messages", ["conversation_id", "id"])

    op.create_table("oc_region_branches",
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("branch_id", sa.String(length=32), nullable=False),
        sa.Column("distance_km", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("region", "branch_id")
    )
    op.create_table("oc_offers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("product", sa.String(length=100), nullable=False),
        sa.Column("amount_yuan", sa.Integer(), nullable=False),
        sa.Column("rate_min", PERCENT, nullable=False),
        sa.Column("rate_max", PERCENT, nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["oc_customers.customer_id"], ),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_oc_offers_customer_id", "oc_offers", ["customer_id"])

    op.create_table("oc_conversations",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("outcome_reason", sa.Text(), nullable=True),
        sa.Column("started_at", STAMP, nullable=False),
        sa.Column("ended_at", STAMP, nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["oc_customers.customer_id"], ),
        sa.ForeignKeyConstraint(["offer_id"], ["oc_offers.id"], ),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_oc_conversations_customer_id", "oc_conversations", ["customer_id"])


def downgrade() -> None:
    for table in (
        "oc_conversations", "oc_offers", "oc_region_branches", "oc_messages", "oc_handoffs",
        "oc_handoff_events", "oc_do_not_contact", "oc_customers", "oc_campaigns",
        "oc_campaign_targets", "oc_calls", "oc_callbacks", "oc_call_attempts", "oc_branches",
        "oc_agents", "oc_agent_sessions",
    ):
        op.drop_table(table)

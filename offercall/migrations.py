"""A small, explicit schema migration runner.

Each step has a number and a function of a connection. ``oc_schema_migrations`` records the
applied steps. Steps after the first must use explicit DDL (never ``create_all`` of the
current models), so that every database walks the same path.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from offercall import schema
from offercall.db import utcnow

_meta = MetaData()
schema_migrations = Table(
    "oc_schema_migrations",
    _meta,
    Column("version", Integer, primary_key=True),
    Column("applied_at", schema.UTCDateTime, nullable=False),
)


def _initial_schema(connection: Connection) -> None:
    tables = [
        schema.Customer.__table__, schema.Offer.__table__, schema.Conversation.__table__,
        schema.Callback.__table__, schema.DoNotContact.__table__,
    ]
    schema.Base.metadata.create_all(connection, tables=tables)
    frozen = MetaData()
    Table(  # as it was at step 1; step 3 adds the queue's columns
        "oc_handoffs", frozen,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("conversation_id", String(128), nullable=False, index=True),
        Column("customer_id", String(64), index=True),
        Column("offer_id", Integer),
        Column("channel", String(16), nullable=False),
        Column("reason", String(64), nullable=False),
        Column("transcript", JSON, nullable=False),
        Column("intents", JSON, nullable=False),
        Column("status", String(16), nullable=False),
        Column("created_at", schema.UTCDateTime, nullable=False),
    )
    frozen.create_all(connection)


def _calls_table(connection: Connection) -> None:
    stamp = "TIMESTAMP WITH TIME ZONE" if connection.dialect.name == "postgresql" else "DATETIME"
    connection.execute(text(
        f"""CREATE TABLE oc_calls (
            id VARCHAR(128) PRIMARY KEY,
            customer_id VARCHAR(64) NOT NULL,
            transport VARCHAR(32) NOT NULL,
            outcome VARCHAR(32) NOT NULL,
            ended_by VARCHAR(16) NOT NULL,
            duration_ms INTEGER NOT NULL,
            handoff_id INTEGER,
            recording_path TEXT,
            transcript_path TEXT,
            error TEXT,
            started_at {stamp} NOT NULL,
            ended_at {stamp} NOT NULL
        )"""
    ))
    connection.execute(text("CREATE INDEX ix_oc_calls_customer_id ON oc_calls (customer_id)"))


def _handoff_queue(connection: Connection) -> None:
    """The handoff queue: ticket routing columns, the event log, the message log, agents,
    their login sessions, and the region -> branch table."""
    stamp = "TIMESTAMP WITH TIME ZONE" if connection.dialect.name == "postgresql" else "DATETIME"
    for column in (
        "kind VARCHAR(16) NOT NULL DEFAULT 'live'",
        "tier VARCHAR(16) NOT NULL DEFAULT 'branch'",
        "region VARCHAR(100)",
        "branch_id VARCHAR(32)",
        "product VARCHAR(100)",
        "language VARCHAR(32) NOT NULL DEFAULT 'mandarin'",
        f"waiting_since {stamp}",
        f"claim_deadline {stamp}",
        f"callback_due_at {stamp}",
        "claimed_by INTEGER",
        f"claimed_at {stamp}",
        f"connected_at {stamp}",
        f"closed_at {stamp}",
        "agent_outcome VARCHAR(32)",
        "agent_note TEXT",
        f"updated_at {stamp}",
    ):
        connection.execute(text(f"ALTER TABLE oc_handoffs ADD COLUMN {column}"))
    connection.execute(text("UPDATE oc_handoffs SET waiting_since = created_at, updated_at = created_at"))
    connection.execute(text("CREATE INDEX ix_oc_handoffs_status ON oc_handoffs (status)"))
    frozen = MetaData()
    Table(
        "oc_handoff_events", frozen,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("handoff_id", Integer, nullable=False, index=True),
        Column("from_status", String(16)),
        Column("to_status", String(16), nullable=False),
        Column("tier", String(16), nullable=False),
        Column("actor", String(64), nullable=False),
        Column("reason", Text, nullable=False),
        Column("created_at", schema.UTCDateTime, nullable=False),
    )
    Table(
        "oc_messages", frozen,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("conversation_id", String(128), nullable=False),
        Column("sender", String(16), nullable=False),
        Column("text", Text, nullable=False),
        Column("client_msg_id", String(64)),
        Column("handoff_id", Integer),
        Column("agent_id", Integer),
        Column("data", JSON, nullable=False),
        Column("created_at", schema.UTCDateTime, nullable=False),
        UniqueConstraint("conversation_id", "client_msg_id", name="uq_oc_messages_client_id"),
        Index("ix_oc_messages_conversation", "conversation_id", "id"),
    )
    Table(
        "oc_branches", frozen,
        Column("id", String(32), primary_key=True),
        Column("name", String(100), nullable=False),
    )
    Table(
        "oc_region_branches", frozen,
        Column("region", String(100), primary_key=True),
        Column("branch_id", String(32), primary_key=True),
        Column("distance_km", Float, nullable=False),
    )
    Table(
        "oc_agents", frozen,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("username", String(64), nullable=False, unique=True),
        Column("display_name", String(100), nullable=False),
        Column("password_hash", String(256), nullable=False),
        Column("role", String(16), nullable=False),
        Column("branch_id", String(32)),
        Column("products", JSON, nullable=False),
        Column("languages", JSON, nullable=False),
        Column("active", Boolean, nullable=False),
        Column("last_seen_at", schema.UTCDateTime),
        Column("created_at", schema.UTCDateTime, nullable=False),
    )
    Table(
        "oc_agent_sessions", frozen,
        Column("token_hash", String(64), primary_key=True),
        Column("agent_id", Integer, nullable=False, index=True),
        Column("created_at", schema.UTCDateTime, nullable=False),
        Column("expires_at", schema.UTCDateTime, nullable=False),
        Column("revoked_at", schema.UTCDateTime),
    )
    frozen.create_all(connection)


def _campaigns(connection: Connection) -> None:
    """Outbound campaigns, their targets (one per customer), and every dial attempt."""
    frozen = MetaData()
    Table(
        "oc_campaigns", frozen,
        Column("id", String(64), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("status", String(16), nullable=False),
        Column("transport", String(32), nullable=False),
        Column("config", JSON, nullable=False),
        Column("created_at", schema.UTCDateTime, nullable=False),
        Column("updated_at", schema.UTCDateTime, nullable=False),
    )
    Table(
        "oc_campaign_targets", frozen,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("campaign_id", String(64), nullable=False),
        Column("customer_id", String(64), nullable=False),
        Column("variant", String(16), nullable=False),
        Column("status", String(16), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("next_attempt_at", schema.UTCDateTime),
        Column("last_outcome", String(32)),
        Column("final_reason", Text),
        Column("created_at", schema.UTCDateTime, nullable=False),
        Column("updated_at", schema.UTCDateTime, nullable=False),
        UniqueConstraint("campaign_id", "customer_id", name="uq_oc_campaign_targets_customer"),
        Index("ix_oc_campaign_targets_due", "campaign_id", "status", "next_attempt_at"),
    )
    Table(
        "oc_call_attempts", frozen,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("target_id", Integer, nullable=False),
        Column("campaign_id", String(64), nullable=False, index=True),
        Column("customer_id", String(64), nullable=False, index=True),
        Column("attempt_no", Integer, nullable=False),
        Column("call_id", String(128), nullable=False, unique=True),
        Column("variant", String(16), nullable=False),
        Column("offer_id", Integer),
        Column("offer_version", Integer),
        Column("offer_terms", JSON),
        Column("status", String(16), nullable=False),
        Column("outcome", String(32)),
        Column("dialer", String(64), nullable=False),
        Column("lease_until", schema.UTCDateTime, nullable=False),
        Column("facts", JSON, nullable=False),
        Column("disclosure_proof", JSON),
        Column("handoff_id", Integer),
        Column("callback_at", schema.UTCDateTime),
        Column("started_at", schema.UTCDateTime, nullable=False),
        Column("ended_at", schema.UTCDateTime),
        UniqueConstraint("target_id", "attempt_no", name="uq_oc_call_attempts_no"),
        Index("ix_oc_call_attempts_status", "status", "lease_until"),
    )
    frozen.create_all(connection)


def _phone_transfers(connection: Connection) -> None:
    """How a phone call reached an agent over SIP: blind (REFER) or bridged, to whom, when."""
    stamp = "TIMESTAMP WITH TIME ZONE" if connection.dialect.name == "postgresql" else "DATETIME"
    for column in (
        "transfer_mode VARCHAR(16)",
        "transfer_target VARCHAR(200)",
        "transfer_status VARCHAR(16)",
        f"transferred_at {stamp}",
    ):
        connection.execute(text(f"ALTER TABLE oc_handoffs ADD COLUMN {column}"))


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _initial_schema),
    (2, _calls_table),
    (3, _handoff_queue),
    (4, _campaigns),
    (5, _phone_transfers),
]


def _applied(connection: Connection) -> set[int]:
    return set(connection.execute(select(schema_migrations.c.version)).scalars())


def _apply_missing(engine: Engine) -> list[int]:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # one migrator at a time across processes; released at commit
            connection.execute(text("SELECT pg_advisory_xact_lock(746511)"))
        _meta.create_all(connection)
        done = _applied(connection)
        applied = []
        for version, step in MIGRATIONS:
            if version in done:
                continue
            step(connection)
            connection.execute(insert(schema_migrations).values(version=version, applied_at=utcnow()))
            applied.append(version)
        return applied


def migrate(engine: Engine) -> list[int]:
    """Apply the missing steps in one transaction; return the versions applied (often none).

    Safe when several processes start at once: PostgreSQL serialises them with an advisory
    lock; on SQLite a loser of the race sees the winner's work when it retries.
    """
    try:
        return _apply_missing(engine)
    except DBAPIError:
        with engine.connect() as connection:
            if {version for version, _ in MIGRATIONS} <= _applied(connection):
                return []
        raise

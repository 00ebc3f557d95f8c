"""A small, explicit schema migration runner.

Each step has a number and a function of a connection. ``oc_schema_migrations`` records the
applied steps. Steps after the first must use explicit DDL (never ``create_all`` of the
current models), so that every database walks the same path.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
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
        schema.Callback.__table__, schema.DoNotContact.__table__, schema.Handoff.__table__,
    ]
    schema.Base.metadata.create_all(connection, tables=tables)


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


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _initial_schema),
    (2, _calls_table),
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

"""Errors of the persistence layer.

PersistenceError
├── SchemaOutOfDate      the database's schema is not the one this offercall needs
└── LegacySchemaError    a database from before Alembic that the baseline cannot adopt
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

DATABASE_AWAY = (OperationalError, InterfaceError)
"""What SQLAlchemy raises when the database cannot be reached or loses the connection (a
restart, a failover; SQLite's "database is locked" too): the transaction wrote nothing and the
same work may be tried again. A bad statement or a broken constraint is the code's own fault."""


def is_database_away(exc: BaseException) -> bool:
    """Whether ``exc`` is :data:`DATABASE_AWAY`, or any driver error that cost the connection."""
    return isinstance(exc, DATABASE_AWAY) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


class PersistenceError(Exception):
    """Base class of the persistence layer's errors."""


class SchemaOutOfDate(PersistenceError):
    """The database is behind (or ahead of) this offercall's schema: run ``offercall migrate``."""


class LegacySchemaError(PersistenceError):
    """A database made by the home-made migration runner that stopped before its last step."""

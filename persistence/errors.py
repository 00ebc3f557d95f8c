"""Errors of the persistence layer.

PersistenceError
├── SchemaOutOfDate      the database's schema is not the one this offercall needs
└── LegacySchemaError    a database from before Alembic that the baseline cannot adopt
"""

from __future__ import annotations


class PersistenceError(Exception):
    """Base class of the persistence layer's errors."""


class SchemaOutOfDate(PersistenceError):
    """The database is behind (or ahead of) this offercall's schema: run ``offercall migrate``."""


class LegacySchemaError(PersistenceError):
    """A database made by the home-made migration runner that stopped before its last step."""

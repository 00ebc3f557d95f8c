"""Schema migrations, with Alembic (the SQLAlchemy project's tool).

Revisions live in ``persistence/migrations/versions``; the first one is the schema as the
home-made runner left it (its steps 1–5), and adopts a database that runner made. Migrations
run in set-up and deployment (``offercall migrate``), never as a side effect of starting a
process: processes open the database with :func:`persistence.engine.open_database`, which
refuses a schema that is not at the head revision.

Several migrators may start at once (several processes of a deployment): they take turns on
the database's lock, and the later ones find the work done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from persistence.errors import SchemaOutOfDate

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "oc_alembic_version"
ADVISORY_LOCK = 746511


def include_object(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    """Only offercall's ``oc_`` tables are ours: Rasa's tracker store (``events``) shares the
    database."""
    return kind != "table" or bool(name and name.startswith("oc_"))


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for offercall's revisions (on ``connection``, if given)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision this code's schema is at."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no revisions in persistence/migrations/versions"
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None: never migrated with Alembic)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _applied_between(before: str | None, after: str | None) -> list[str]:
    if after is None or after == before:
        return []
    scripts = ScriptDirectory.from_config(alembic_config())
    return [script.revision for script in reversed(list(scripts.iterate_revisions(after, before)))]


@contextmanager
def _locked_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that holds the database's lock for migrating from the version read to
    the commit, with the DDL inside it: PostgreSQL's advisory lock; on SQLite ``BEGIN
    IMMEDIATE`` (the write lock), with pysqlite's own transaction handling off, since it would
    run DDL outside any transaction."""
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            with connection.begin():
                if connection.dialect.name == "postgresql":  # held until the commit
                    connection.execute(text(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK})"))
                yield connection
            return
        raw = connection.connection.dbapi_connection
        raw.isolation_level = None
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # waits for another migrator
            yield connection
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            raw.isolation_level = ""


def _upgrade(engine: Engine) -> list[str]:
    with _locked_transaction(engine) as connection:
        before = current_revision(connection)
        command.upgrade(alembic_config(connection), "head")
        return _applied_between(before, current_revision(connection))


def migrate(engine: Engine) -> list[str]:
    """Brings the schema to the head revision in one transaction; returns the revisions applied
    (often none)."""
    try:
        return _upgrade(engine)
    except DBAPIError:
        with engine.connect() as connection:
            if current_revision(connection) == head_revision():
                return []  # another process migrated it meanwhile (SQLite)
        raise


def check_schema(engine: Engine) -> None:
    """Raises :class:`SchemaOutOfDate` unless the database is at this code's head revision."""
    with engine.connect() as connection:
        current = current_revision(connection)
    head = head_revision()
    if current != head:
        where = "has no offercall schema" if current is None else f"is at revision {current}"
        raise SchemaOutOfDate(
            f"the database {where}; this offercall needs revision {head}: run `offercall migrate`"
        )

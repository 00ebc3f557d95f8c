"""The database engine and transactions. SQLite is the embedded default; PostgreSQL via
DATABASE_URL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from core.settings import Settings
from persistence.migrator import check_schema

T = TypeVar("T")


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite files get WAL, foreign keys and a busy timeout so the
    Rasa server, the action server and the web server can share one file."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, future=True, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(connection: Any, _: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits at the end of the block, or rolls back on error."""
    session = Session(engine, future=True, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def in_transaction(engine: Engine, work: Callable[[Session], T]) -> T:
    """``work(session)`` in one transaction (:func:`session_scope`), in a worker thread so the
    event loop goes on meanwhile."""
    def run() -> T:
        with session_scope(engine) as session:
            return work(session)
    return await asyncio.to_thread(run)


def open_database(settings: Settings) -> Engine:
    """The engine of ``settings.database_url``, once its schema is known to be the one this code
    needs (:class:`persistence.errors.SchemaOutOfDate` otherwise: run ``offercall migrate``).

    Processes open the database with this; only set-up and deployment migrate it."""
    engine = make_engine(settings.database_url)
    try:
        check_schema(engine)
    except Exception:
        engine.dispose()
        raise
    return engine

"""Alembic's environment for offercall: the connection comes from ``persistence.migrator``
(which holds the database's lock on it), or, for the ``alembic`` command line, from
``DATABASE_URL`` (offercall's settings). Only offercall's ``oc_`` tables are ours: Rasa's
tracker store shares the database."""

from __future__ import annotations

from typing import Any

from alembic import context

from core.settings import Settings
from persistence.engine import make_engine
from persistence.migrator import VERSION_TABLE, include_object
from persistence.schema import Base


def run(connection: Any) -> None:
    context.configure(
        connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE,
        include_object=include_object, compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:  # the alembic command line (alembic.ini): the database offercall's settings name
    engine = make_engine(Settings.from_environ().database_url)
    with engine.begin() as opened:
        run(opened)
    engine.dispose()

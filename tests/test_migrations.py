"""Schema migrations with Alembic, on SQLite and on a real PostgreSQL server: a fresh database,
one made by the home-made runner before Alembic (a dump of what offercall 39a424f wrote, rows
included), one that runner left half-way, several migrators at once, and processes that refuse
a schema that is not current."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from core.settings import Settings
from persistence.engine import make_engine, open_database, session_scope
from persistence.errors import LegacySchemaError, SchemaOutOfDate
from persistence.migrator import (
    VERSION_TABLE,
    current_revision,
    head_revision,
    include_object,
    migrate,
)
from persistence.schema import Base

LEGACY = Path(__file__).parent / "data" / "legacy"


def schema_of(engine: Engine) -> dict[str, Any]:
    """Every offercall table as the database describes it: columns (type, nullability, server
    default), primary key, indexes, unique and check constraints, foreign keys."""
    inspector = inspect(engine)
    described = {}
    for table in sorted(t for t in inspector.get_table_names()
                        if t.startswith("oc_") and t != VERSION_TABLE):
        described[table] = {
            "columns": {c["name"]: (str(c["type"]), c["nullable"], _default(c["default"]))
                        for c in inspector.get_columns(table)},
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in inspector.get_indexes(table)),
            "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
            "checks": sorted(c["name"] for c in inspector.get_check_constraints(table)),
            "foreign_keys": sorted((tuple(f["constrained_columns"]), f["referred_table"])
                                   for f in inspector.get_foreign_keys(table)),
        }
    return described


def _default(value: str | None) -> str | None:
    """A server default without its dialect's quoting and casts ('live'::character varying)."""
    return None if value is None or value.startswith("nextval(") else value.split("::")[0].strip("'\"")


def drift(engine: Engine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "include_object": include_object, "version_table": VERSION_TABLE})
        return compare_metadata(context, Base.metadata)


def load_legacy_dump(db_url: str, engine: Engine, postgres_server: Any) -> None:
    """The database exactly as offercall wrote it before Alembic (see tests/data/legacy)."""
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:  # the dump creates tables in name order, so rows may come before what they refer to
            raw.executescript("PRAGMA foreign_keys=OFF;\n"
                              + (LEGACY / "offercall-39a424f.sqlite.sql").read_text(encoding="utf-8")
                              + "\nPRAGMA foreign_keys=ON;")
        finally:
            raw.close()
        return
    database = db_url.rsplit("/", 1)[1]
    subprocess.run(
        [str(postgres_server.bin_dir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
         "-p", str(postgres_server.port), "-U", "postgres", "-d", database,
         "-f", str(LEGACY / "offercall-39a424f.postgresql.sql")],
        check=True, capture_output=True,
    )


@pytest.fixture
def blank(db_url) -> Engine:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres(db_url, request):
    return request.getfixturevalue("postgres_server") if db_url.startswith("postgresql") else None


def test_a_fresh_database_is_migrated_to_the_models_and_again_is_a_no_op(blank):
    applied = migrate(blank)
    assert applied[0] == "0001" and applied[-1] == head_revision(), "every revision, in order"
    assert drift(blank) == [], "the migrations and the models describe the same schema"
    with blank.connect() as connection:
        assert current_revision(connection) == head_revision()
    assert migrate(blank) == []


def test_a_database_from_before_alembic_is_adopted_with_its_rows(db_url, blank, postgres):
    load_legacy_dump(db_url, blank, postgres)
    with blank.connect() as connection:
        counts = {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                  for table in schema_of(blank) if table != "oc_schema_migrations"}
    assert counts["oc_customers"] == 12 and counts["oc_handoff_events"] >= 3

    assert migrate(blank)[0] == "0001"

    assert "oc_schema_migrations" not in schema_of(blank)
    with blank.connect() as connection:
        assert counts == {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                          for table in counts}
        assert current_revision(connection) == head_revision()
    assert drift(blank) == []


def test_an_adopted_database_has_the_same_schema_as_a_fresh_one(db_url, blank, postgres, tmp_path):
    load_legacy_dump(db_url, blank, postgres)
    migrate(blank)
    fresh_url = (f"sqlite:///{tmp_path / 'fresh.db'}" if db_url.startswith("sqlite")
                 else postgres.new_database())
    fresh = make_engine(fresh_url)
    try:
        migrate(fresh)
        assert schema_of(fresh) == schema_of(blank)
    finally:
        fresh.dispose()


def test_a_database_the_old_runner_left_half_way_is_refused_and_left_as_it_was(db_url, blank, postgres):
    load_legacy_dump(db_url, blank, postgres)
    with blank.begin() as connection:
        connection.execute(text("DELETE FROM oc_schema_migrations WHERE version > 3"))
    before = schema_of(blank)
    with pytest.raises(LegacySchemaError, match=r"stopped at steps \[1, 2, 3\]"):
        migrate(blank)
    assert schema_of(blank) == before
    with blank.connect() as connection:
        assert current_revision(connection) is None


def test_several_migrating_processes_at_once_all_succeed_and_the_schema_is_made_once(
        db_url, blank, tmp_path):
    env = {**os.environ, "DATABASE_URL": db_url, "OFFERCALL_VAR_DIR": str(tmp_path)}
    migrators = [subprocess.Popen([sys.executable, "-m", "offercall", "migrate"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(3)]
    outputs = [process.communicate(timeout=120)[0] for process in migrators]
    assert [process.returncode for process in migrators] == [0, 0, 0], outputs
    assert sum("applied: 0001" in output for output in outputs) == 1, outputs
    with blank.connect() as connection:
        assert current_revision(connection) == head_revision()
    assert drift(blank) == []


def test_processes_refuse_a_database_that_is_not_migrated_and_say_what_to_run(db_url, blank):
    settings = Settings.from_environ({"DATABASE_URL": db_url})
    with pytest.raises(SchemaOutOfDate, match="run `offercall migrate`"):
        open_database(settings)
    migrate(blank)
    engine = open_database(settings)
    with session_scope(engine) as session:
        assert session.execute(text("SELECT count(*) FROM oc_customers")).scalar() == 0
    engine.dispose()


def test_the_migrate_command_reports_the_revision_and_other_commands_ask_for_it(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "OFFERCALL_VAR_DIR": str(tmp_path)}
    offercall = [sys.executable, "-m", "offercall"]
    refused = subprocess.run([*offercall, "chat-link", "--customer", "C0001"], env=env,
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "run `offercall migrate`" in refused.stderr
    done = subprocess.run([*offercall, "migrate"], env=env, capture_output=True, text=True, check=True)
    assert f"schema at revision {head_revision()}" in done.stdout
    again = subprocess.run([*offercall, "migrate"], env=env, capture_output=True, text=True, check=True)
    assert "applied: nothing" in again.stdout

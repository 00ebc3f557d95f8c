"""Taking rows of shared work (due campaign customers, due plan steps, texts to send again) so
that two workers never take the same one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select


def claim_rows(session: Session, query: Select, model: Any, *,
               still_due: Callable[[Any], ColumnElement[bool]],
               values: Mapping[str, Any]) -> list[Any]:
    """The rows of ``query`` (a select of ``model``, ordered and limited) this transaction
    takes, each set to ``values``.

    On PostgreSQL they are locked ``FOR UPDATE SKIP LOCKED``: rows another worker holds are
    passed over. Elsewhere (SQLite, one writer at a time) each is taken by a conditional
    update that only wins while ``still_due(row)`` holds, so a row another worker took
    meanwhile is left to it.
    """
    if session.bind.dialect.name == "postgresql":
        rows = list(session.execute(query.with_for_update(skip_locked=True)).scalars())
        for row in rows:
            for name, value in values.items():
                setattr(row, name, value)
        return rows
    taken = []
    for row in session.execute(query).scalars().all():
        won = session.execute(
            update(model).where(model.id == row.id, still_due(row)).values(**values)
            .execution_options(synchronize_session=False)).rowcount
        if won == 1:
            taken.append(session.get(model, row.id, populate_existing=True))
    return taken

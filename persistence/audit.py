"""The audit trail: written in the caller's transaction (so an entry exists exactly when the
change it records does), read back newest first."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.vocabulary import AuditAction, Role
from persistence.schema import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who did it: a staff account, or someone at the command line."""

    name: str
    role: str
    account_id: int | None = None

    @classmethod
    def command_line(cls) -> Actor:
        """The operating-system user running an ``offercall`` command (the CLI has no login;
        whoever can run it can read the database anyway)."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(f"cli:{user}", Role.ADMIN)


@dataclass(frozen=True)
class AuditRecord:
    """One entry as pages show it."""

    id: int
    at: datetime
    actor: str
    actor_role: str
    action: AuditAction
    subject_kind: str
    subject_id: str
    detail: dict[str, Any] = field(default_factory=dict)


def record(session: Session, actor: Actor, action: AuditAction, subject_kind: str,
           subject_id: str, now: datetime, **detail: Any) -> None:
    """Adds an entry to the caller's transaction."""
    session.add(AuditEntry(
        at=now, actor_id=actor.account_id, actor=actor.name, actor_role=str(actor.role),
        action=action, subject_kind=subject_kind, subject_id=subject_id, detail=detail,
    ))
    session.flush()


def history(session: Session, subject_kind: str, subject_id: str, limit: int = 200) -> list[AuditRecord]:
    """What was done to one subject, newest first."""
    rows = session.execute(
        select(AuditEntry).where(AuditEntry.subject_kind == subject_kind,
                                 AuditEntry.subject_id == subject_id)
        .order_by(AuditEntry.id.desc()).limit(limit)
    ).scalars()
    return [AuditRecord(row.id, row.at, row.actor, row.actor_role, row.action, row.subject_kind,
                        row.subject_id, dict(row.detail)) for row in rows]

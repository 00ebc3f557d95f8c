"""The alerts API's JSON, and its request values read strictly. Imports no aiohttp and no
SQLAlchemy: the handlers look up the names the JSON shows and pass them in.

Times are ISO 8601 in UTC (the page shows them in the browser's zone); the customer is
masked (``lending.alerts.Alert`` holds them so).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lending.alert_rules import RULE_NAMES
from lending.alerts import NOTE_MAX, Alert, StatusFilter


@dataclass(frozen=True)
class Names:
    """Account id -> display name, branch id -> name, for the JSON."""

    accounts: Mapping[int, str] = field(default_factory=dict)
    branches: Mapping[str, str] = field(default_factory=dict)

    def account(self, account_id: int | None) -> dict[str, Any] | None:
        if account_id is None:
            return None
        return {"id": account_id, "name": self.accounts.get(account_id)}

    def branch(self, branch_id: str | None) -> dict[str, Any] | None:
        if branch_id is None:
            return None
        return {"id": branch_id, "name": self.branches.get(branch_id)}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def account_ids(alerts: Iterable[Alert]) -> set[int]:
    """Every account an alert's JSON names."""
    ids: set[int] = set()
    for alert in alerts:
        ids.update(i for i in (alert.manager_id, alert.acknowledged_by) if i is not None)
        ids.update(alert.escalated_to)
    return ids


def alert_json(alert: Alert, names: Names) -> dict[str, Any]:
    """An alert as the page reads it."""
    return {
        "id": alert.id,
        "customer": {"id": alert.customer_id, "name": alert.masked_name,
                     "phone": alert.masked_phone, "region": alert.region},
        "rule": str(alert.rule), "rule_name": RULE_NAMES[alert.rule], "period": alert.period,
        "figures": alert.figures, "summary": alert.summary,
        "branch": names.branch(alert.branch_id), "manager": names.account(alert.manager_id),
        "owner_reason": alert.owner_reason, "status": str(alert.status), "is_open": alert.is_open,
        "raised_at": _iso(alert.raised_at), "due_at": _iso(alert.due_at), "overdue": alert.overdue,
        "escalated_at": _iso(alert.escalated_at),
        "escalated_to": [names.account(i) for i in alert.escalated_to],
        "acknowledged_at": _iso(alert.acknowledged_at),
        "acknowledged_by": names.account(alert.acknowledged_by), "note": alert.note,
    }


def parse_status(value: str | None) -> StatusFilter:
    """``?status=`` (missing: open alerts); ``ValueError`` saying what is allowed."""
    if not value:
        return StatusFilter.OPEN
    try:
        return StatusFilter(value)
    except ValueError:
        raise ValueError(f"status must be one of {', '.join(StatusFilter)}, "
                         f"got {value!r}") from None


def parse_note(body: Mapping[str, Any]) -> str:
    """``{"note": "..."}``: the acknowledgement's note, required."""
    note = body.get("note")
    if not isinstance(note, str) or not note.strip():
        raise ValueError("an acknowledgement needs a note")
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise ValueError(f"a note may be at most {NOTE_MAX} characters, got {len(note)}")
    return note


def parse_manager(body: Mapping[str, Any]) -> int:
    """``{"manager_id": 7}``."""
    manager_id = body.get("manager_id")
    if isinstance(manager_id, bool) or not isinstance(manager_id, int) \
            or not 0 < manager_id < 2**31:
        raise ValueError("manager_id must be an account id")
    return manager_id

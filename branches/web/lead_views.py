"""The leads API's JSON, and its request values read strictly. Imports no aiohttp and no
SQLAlchemy: the handlers look up the names the JSON shows and pass them in (``Names``).

Times are ISO 8601 in UTC (the page shows them in the browser's zone); customers are masked
here, as ``branches.leads.Lead`` holds them (the full name and phone only through the
audited ``/contact``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from branches.leads import Lead, LeadEvent, LeadPeriod
from branches.scorecard import Scorecard, ScorecardPolicy
from core.vocabulary import LeadOutcome, RerouteReason, StrEnum

MAX_NOTE = 2000
"""Characters of a note or a step's note (what ``branches.leads`` keeps)."""


class StatusFilter(StrEnum):
    """Which leads ``GET /api/leads?status=`` lists."""

    OPEN = "open"
    CLOSED = "closed"
    ALL = "all"

    def admits(self, lead: Lead) -> bool:
        return self is StatusFilter.ALL or lead.is_open == (self is StatusFilter.OPEN)


def parse_status(value: str | None) -> StatusFilter:
    """``?status=`` (missing: open leads); ``ValueError`` saying what is allowed."""
    if value is None or value == "":
        return StatusFilter.OPEN
    try:
        return StatusFilter(value)
    except ValueError:
        raise ValueError(f"status must be one of {', '.join(StatusFilter)}, "
                         f"got {value!r}") from None


@dataclass(frozen=True)
class StepRequest:
    """``POST /api/leads/{id}/steps``: what happened, and an optional note."""

    outcome: LeadOutcome
    note: str


def _note(body: Mapping[str, Any], *, required: bool) -> str:
    note = body.get("note", "")
    if note is None:
        note = ""
    if not isinstance(note, str):
        raise ValueError("note must be text")
    note = note.strip()
    if required and not note:
        raise ValueError("a note needs some text")
    if len(note) > MAX_NOTE:
        raise ValueError(f"a note may be at most {MAX_NOTE} characters, got {len(note)}")
    return note


def parse_step(body: Mapping[str, Any]) -> StepRequest:
    """The step's body, or ``ValueError`` saying what is wrong."""
    outcome = body.get("outcome")
    if not isinstance(outcome, str):
        raise ValueError(f"outcome is required: one of {', '.join(LeadOutcome)}")
    try:
        chosen = LeadOutcome(outcome)
    except ValueError:
        raise ValueError(f"outcome must be one of {', '.join(LeadOutcome)}, "
                         f"got {outcome!r}") from None
    return StepRequest(chosen, _note(body, required=False))


def parse_note(body: Mapping[str, Any]) -> str:
    """``POST /api/leads/{id}/notes``' note, or ``ValueError``."""
    return _note(body, required=True)


def parse_manager(body: Mapping[str, Any]) -> int:
    """``POST /api/leads/{id}/assign``' account id, or ``ValueError``."""
    manager_id = body.get("manager_id")
    if isinstance(manager_id, bool) or not isinstance(manager_id, int) or manager_id < 1:
        raise ValueError(f"manager_id must be an account id, got {manager_id!r}")
    return manager_id


@dataclass(frozen=True)
class RerouteRequest:
    """``POST /api/leads/{id}/reroute``: why, and to which branch (None: the next nearest)."""

    reason: str
    branch: str | None


def parse_reroute(body: Mapping[str, Any]) -> RerouteRequest:
    """The reroute request, or ``ValueError``."""
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason must say why the lead moves")
    branch = body.get("branch")
    if branch is not None and (not isinstance(branch, str) or not branch.strip()):
        raise ValueError(f"branch must be a branch id or null, got {branch!r}")
    return RerouteRequest(reason, branch.strip() if branch else None)


def actor_account(actor: str) -> int | None:
    """The account id in a lead event's actor (``<role>:<account id>``; None for the system's
    ``system:<job>``)."""
    role, _, account = actor.partition(":")
    return int(account) if role != "system" and account.isdigit() else None


@dataclass(frozen=True)
class Names:
    """What the JSON names beside the ids: accounts' display names and branches' names."""

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


def account_ids(leads: Iterable[Lead] = (), events: Iterable[LeadEvent] = (),
                periods: Iterable[LeadPeriod] = ()) -> set[int]:
    """Every account these name (their managers and the events' actors)."""
    ids = {lead.manager_id for lead in leads}
    for event in events:
        ids |= {event.manager_id, actor_account(event.actor)}
    ids |= {period.manager_id for period in periods}
    ids.discard(None)
    return ids  # type: ignore[return-value]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def missed_deadline(lead: Lead) -> RerouteReason | None:
    """Which deadline an overdue lead missed: the claim until it is claimed, then the
    verification (None: on time)."""
    if lead.overdue is None:
        return None
    return RerouteReason.CLAIM_OVERDUE if lead.claimed_at is None else RerouteReason.VERIFY_OVERDUE


def lead_json(lead: Lead, names: Names) -> dict[str, Any]:
    """A lead as the list and the lead page show it."""
    missed = missed_deadline(lead)
    return {
        "id": lead.id,
        "customer": {"id": lead.customer_id, "name": lead.masked_name,
                     "phone": lead.masked_phone, "region": lead.region},
        "product": lead.product,
        "amount_yuan": lead.amount_yuan,
        "source": str(lead.source),
        "source_ref": lead.source_ref,
        "branch": names.branch(lead.branch_id),
        "manager": names.account(lead.manager_id),
        "status": str(lead.status),
        "outcome": str(lead.outcome) if lead.outcome else None,
        "is_open": lead.is_open,
        "assigned_at": _iso(lead.assigned_at),
        "claimed_at": _iso(lead.claimed_at),
        "contacted_at": _iso(lead.contacted_at),
        "verified_at": _iso(lead.verified_at),
        "closed_at": _iso(lead.closed_at),
        "created_at": _iso(lead.created_at),
        "updated_at": _iso(lead.updated_at),
        "claim_due": _iso(lead.claim_due),
        "verify_due": _iso(lead.verify_due),
        "overdue": lead.overdue,
        "missed": str(missed) if missed else None,
        "reroutes": lead.reroutes,
        "note": lead.note,
    }


def event_json(event: LeadEvent, names: Names) -> dict[str, Any]:
    """One row of a lead's history."""
    return {
        "id": event.id,
        "at": _iso(event.at),
        "kind": str(event.kind),
        "actor": event.actor,
        "by": names.account(actor_account(event.actor)),
        "manager": names.account(event.manager_id),
        "from_branch": names.branch(event.from_branch),
        "to_branch": names.branch(event.to_branch),
        "reason": event.reason,
        "outcome": event.detail.get("outcome"),
        "missed": event.detail.get("missed"),
        "note": event.detail.get("note"),
    }


def period_json(period: LeadPeriod, names: Names) -> dict[str, Any]:
    """One branch's time with the lead."""
    return {
        "branch": names.branch(period.branch_id),
        "distance_km": period.distance_km,
        "reason": period.reason,
        "fallback": period.fallback,
        "manager": names.account(period.manager_id),
        "assigned_at": _iso(period.assigned_at),
        "claimed_at": _iso(period.claimed_at),
        "verified_at": _iso(period.verified_at),
        "outcome": str(period.outcome) if period.outcome else None,
        "ended_at": _iso(period.ended_at),
        "end_reason": period.end_reason,
    }


def scorecard_json(card: Scorecard, suspended: str | None, policy: ScorecardPolicy,
                   names: Names) -> dict[str, Any]:
    """A branch's scorecard: its rates (0..1, None while nothing is judged), the counts they
    come from, the window, the policy's minimums, and why it gets no new leads (None: it does)."""
    return {
        "branch": names.branch(card.branch_id),
        "window_start": _iso(card.window_start),
        "window_end": _iso(card.window_end),
        "window_days": card.window_days,
        "leads": card.leads,
        "claims_judged": card.claims_judged,
        "claims_on_time": card.claims_on_time,
        "verifications_judged": card.verifications_judged,
        "verifications_on_time": card.verifications_on_time,
        "finished": card.finished,
        "applied": card.applied,
        "rerouted_away": card.rerouted_away,
        "claimed_on_time_rate": card.claimed_on_time_rate,
        "verified_on_time_rate": card.verified_on_time_rate,
        "conversion_rate": card.conversion_rate,
        "min_claim_rate": policy.min_claim_rate,
        "min_verify_rate": policy.min_verify_rate,
        "min_judged": policy.min_judged,
        "suspended": suspended,
    }


def by_due(leads: Iterable[Lead]) -> list[Lead]:
    """Open leads first, the soonest due first; then closed ones, newest first (the order of
    ``leads_of_branch``, for leads of several branches)."""
    def key(lead: Lead) -> tuple:
        due = lead.claim_due or lead.verify_due
        if lead.is_open:
            return (0, due is None, due.timestamp() if due else 0.0, lead.id)
        return (1, False, -(lead.closed_at or lead.updated_at).timestamp(), -lead.id)

    return sorted(leads, key=key)

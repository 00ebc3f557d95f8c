"""Builders shared by the pure routing and SLA tests."""

from __future__ import annotations

from datetime import datetime, timezone

from handoff.routing import TicketFacts

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)


def ticket(**overrides) -> TicketFacts:
    """A live voice ticket for branch B1, queued at T0, unless told otherwise."""
    fields = dict(
        ticket_id=1, channel="voice", kind="live", tier="branch", status="queued",
        branch_id="B1", product="loan", language="mandarin", waiting_since=T0,
        claim_deadline=None, claimed_by=None,
    )
    return TicketFacts(**{**fields, **overrides})

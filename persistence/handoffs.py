"""Writing a handoff ticket and its history: the part of the agents' queue that the bot's
action server (and its fail-safe) does itself. Claims, routing and the SLA live in ``handoff``.

Every change of a ticket is also a row in ``oc_handoff_events`` (who, when, why); nothing is
ever deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from core.vocabulary import Channel, TicketStatus
from persistence.branches import nearest_branch_of
from persistence.schema import Customer, Handoff, HandoffEvent, Offer


def log_event(
    session: Session, row: Handoff, from_status: str | None, actor: str, reason: str, now: datetime
) -> None:
    """A line in the ticket's history, stating its status now."""
    session.add(HandoffEvent(
        handoff_id=row.id, from_status=from_status, to_status=row.status, tier=row.tier,
        actor=actor, reason=reason, created_at=now,
    ))
    session.flush()


def create_ticket(
    session: Session, *, conversation_id: str, customer_id: str | None, offer_id: int | None,
    channel: str, reason: str, transcript: list[dict[str, Any]], intents: list[str], now: datetime,
    callback: tuple[datetime, datetime] | None = None,
) -> int:
    """Puts a customer in the agents' queue, routed first to the branch nearest their region;
    returns the ticket id. With ``callback`` (the time promised to the customer, the claim
    deadline) the ticket is a callback task instead of a customer waiting now."""
    if channel not in set(Channel):
        raise ValueError(f"channel must be one of {', '.join(Channel)}, got {channel!r}")
    customer = session.get(Customer, customer_id) if customer_id else None
    offer = session.get(Offer, offer_id) if offer_id else None
    region = customer.region if customer else None
    due_at, deadline = callback if callback is not None else (None, None)
    row = Handoff(
        conversation_id=conversation_id, customer_id=customer_id, offer_id=offer_id,
        channel=channel, reason=reason, transcript=transcript, intents=intents,
        status=TicketStatus.QUEUED, created_at=now, kind="live" if callback is None else "callback",
        tier="branch", region=region, branch_id=nearest_branch_of(session, region),
        product=offer.product if offer else None, language="mandarin", waiting_since=now,
        updated_at=now, callback_due_at=due_at, claim_deadline=deadline,
    )
    session.add(row)
    session.flush()
    log_event(session, row, None, "bot", f"customer handed off: {reason}", now)
    return row.id

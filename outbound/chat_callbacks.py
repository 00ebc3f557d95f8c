"""Callbacks booked outside a campaign's own calls (in the in-app chat, mostly) become dials.

A callback booked on a campaign call already schedules that call's target when the call
ends. One booked in chat has no call: the scheduler hands it to the campaign that reached the
customer (the newest running or paused campaign that has them as a target), whose target is
then due at the time the customer asked for. The dial itself still passes every compliance
check (do-not-contact, calling window, weekly cap) right before it is placed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.vocabulary import CampaignStatus, DialOutcome
from persistence.schema import CallAttempt, Callback, Campaign, CampaignTarget

SCHEDULED = "scheduled"
QUEUED = "queued"
"""A chat callback that is now its campaign target's next dial."""

BUSY_TARGET = frozenset({"claiming", "dialing"})
"""A target being dialled now: its callback waits for the next sweep."""


@dataclass(frozen=True)
class Adopted:
    """A chat callback and the campaign that will make it."""

    callback_id: int
    customer_id: str
    campaign_id: str
    due_at: datetime


def _outside_calls(session: Session) -> list[Callback]:
    """Scheduled callbacks whose conversation is not a campaign call."""
    campaign_calls = select(CallAttempt.call_id)
    return list(session.execute(
        select(Callback).where(Callback.status == SCHEDULED, Callback.customer_id.is_not(None),
                               Callback.conversation_id.not_in(campaign_calls))
        .order_by(Callback.due_at, Callback.id)).scalars())


def _reaching_target(session: Session, customer_id: str) -> CampaignTarget | None:
    """The customer's target in the newest campaign still being worked."""
    return session.execute(
        select(CampaignTarget).join(Campaign, Campaign.id == CampaignTarget.campaign_id)
        .where(CampaignTarget.customer_id == customer_id,
               Campaign.status.in_((CampaignStatus.RUNNING, CampaignStatus.PAUSED)))
        .order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(1)
    ).scalar_one_or_none()


def adopt_chat_callbacks(session: Session, now: datetime) -> list[Adopted]:
    """Makes each chat callback its customer's next dial (see the module docstring); those whose
    customer is in no campaign being worked stay scheduled, for a person to follow up."""
    adopted = []
    for callback in _outside_calls(session):
        target = _reaching_target(session, callback.customer_id)
        if target is None or target.status in BUSY_TARGET:
            continue
        target.status, target.next_attempt_at = "pending", callback.due_at
        target.last_outcome, target.final_reason = DialOutcome.CALLBACK, None
        target.updated_at = now
        callback.status = QUEUED
        adopted.append(Adopted(callback.id, callback.customer_id, target.campaign_id, callback.due_at))
    session.flush()
    return adopted


def unplaced_chat_callbacks(session: Session) -> int:
    """Chat callbacks no campaign can make (their customer is in none being worked)."""
    return sum(1 for c in _outside_calls(session) if _reaching_target(session, c.customer_id) is None)

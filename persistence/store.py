"""Persistence used by the bot's actions and the chat layer. Functions take a Session (the
caller owns the transaction via ``session_scope``) and return frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.vocabulary import ConversationOutcome
from persistence.schema import (
    Call,
    Callback,
    Conversation,
    Customer,
    DoNotContact,
    Offer,
)


@dataclass(frozen=True)
class CustomerOffer:
    """A customer with their active pre-approved offer (offer fields None when there is none)."""

    customer_id: str
    masked_name: str
    gender: str | None
    phone: str
    region: str
    segment: str
    consent: bool
    org_name: str | None
    """The small business the customer is the contact of, if any."""
    offer_id: int | None
    product: str | None
    amount_yuan: int | None
    rate_min: float | None
    rate_max: float | None
    term_months: int | None
    valid_until: date | None
    offer_version: int | None


@dataclass(frozen=True)
class CallbackRecord:
    """A booked callback."""

    id: int
    conversation_id: str
    customer_id: str | None
    due_at: datetime
    requested_text: str
    status: str


def get_customer_offer(session: Session, customer_id: str) -> CustomerOffer | None:
    """The customer and their active offer, or None for an unknown customer."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        return None
    offer = session.execute(
        select(Offer).where(Offer.customer_id == customer_id, Offer.active.is_(True))
    ).scalar_one_or_none()
    return CustomerOffer(
        customer_id=customer.customer_id,
        masked_name=customer.masked_name,
        gender=customer.gender,
        phone=customer.phone,
        region=customer.region,
        segment=customer.segment,
        consent=customer.consent,
        org_name=customer.org_name,
        offer_id=offer.id if offer else None,
        product=offer.product if offer else None,
        amount_yuan=offer.amount_yuan if offer else None,
        rate_min=float(offer.rate_min) if offer else None,
        rate_max=float(offer.rate_max) if offer else None,
        term_months=offer.term_months if offer else None,
        valid_until=offer.valid_until if offer else None,
        offer_version=offer.version if offer else None,
    )


def start_conversation(
    session: Session, conversation_id: str, customer_id: str | None, channel: str,
    offer_id: int | None,
) -> None:
    """Create the conversation row, or refresh its customer/offer if it exists."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        session.add(Conversation(
            id=conversation_id, customer_id=customer_id, channel=channel, offer_id=offer_id,
            started_at=utcnow(),
        ))
    else:
        conversation.customer_id = customer_id
        conversation.offer_id = offer_id
    session.flush()


def record_outcome(
    session: Session, conversation_id: str, outcome: str, reason: str | None = None
) -> None:
    """Set the conversation's outcome and end time (creating the row if it is missing)."""
    if outcome not in set(ConversationOutcome):
        raise ValueError(
            f"unknown outcome {outcome!r}; expected one of {', '.join(ConversationOutcome)}")
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        conversation = Conversation(id=conversation_id, channel="unknown", started_at=utcnow())
        session.add(conversation)
    conversation.outcome = outcome
    conversation.outcome_reason = reason
    conversation.ended_at = utcnow()
    session.flush()


def latest_outcome(session: Session, conversation_id: str) -> str | None:
    """The recorded outcome of a conversation, if any."""
    conversation = session.get(Conversation, conversation_id)
    return conversation.outcome if conversation else None


def add_do_not_contact(
    session: Session, *, customer_id: str | None, phone: str | None, utterance: str,
    conversation_id: str | None, source: str = "bot",
) -> int:
    """Put a customer and/or phone number on the do-not-contact list. Returns the entry id."""
    if not customer_id and not phone:
        raise ValueError("a do-not-contact entry needs a customer id or a phone number")
    entry = DoNotContact(
        customer_id=customer_id, phone=phone, utterance=utterance,
        conversation_id=conversation_id, source=source, created_at=utcnow(),
    )
    session.add(entry)
    session.flush()
    return entry.id


def is_do_not_contact(
    session: Session, *, customer_id: str | None = None, phone: str | None = None
) -> bool:
    """True when the customer or the phone number is on the do-not-contact list."""
    conditions = []
    if customer_id:
        conditions.append(DoNotContact.customer_id == customer_id)
    if phone:
        conditions.append(DoNotContact.phone == phone)
    if not conditions:
        return False
    found = session.execute(select(DoNotContact.id).where(or_(*conditions)).limit(1)).first()
    return found is not None


def do_not_contact_keys(session: Session) -> tuple[set[str], set[str]]:
    """Every customer id and phone number on the do-not-contact list (for bulk checks)."""
    rows = session.execute(select(DoNotContact.customer_id, DoNotContact.phone)).all()
    return {r.customer_id for r in rows if r.customer_id}, {r.phone for r in rows if r.phone}


def book_callback(
    session: Session, *, conversation_id: str, customer_id: str | None, due_at: datetime,
    requested_text: str,
) -> int:
    """Schedule a callback; returns its id."""
    callback = Callback(
        conversation_id=conversation_id, customer_id=customer_id, due_at=due_at,
        requested_text=requested_text, status="scheduled", created_at=utcnow(),
    )
    session.add(callback)
    session.flush()
    return callback.id


def callbacks_for(session: Session, conversation_id: str) -> list[CallbackRecord]:
    """The callbacks booked in a conversation."""
    rows = session.execute(
        select(Callback).where(Callback.conversation_id == conversation_id).order_by(Callback.id)
    ).scalars()
    return [
        CallbackRecord(r.id, r.conversation_id, r.customer_id, r.due_at, r.requested_text, r.status)
        for r in rows
    ]


@dataclass(frozen=True)
class CallRecord:
    """A finished call as stored: outcome and where its recording and transcript are."""

    call_id: str
    customer_id: str
    transport: str
    outcome: str
    ended_by: str
    duration_ms: int
    handoff_id: int | None
    recording_path: str | None
    transcript_path: str | None
    error: str | None
    started_at: datetime
    ended_at: datetime


def record_call(session: Session, record: CallRecord) -> None:
    """Stores a finished call (once; a second write of the same call id is an error)."""
    session.add(Call(
        id=record.call_id, customer_id=record.customer_id, transport=record.transport,
        outcome=record.outcome, ended_by=record.ended_by, duration_ms=record.duration_ms,
        handoff_id=record.handoff_id, recording_path=record.recording_path,
        transcript_path=record.transcript_path, error=record.error,
        started_at=record.started_at, ended_at=record.ended_at,
    ))
    session.flush()


def get_call(session: Session, call_id: str) -> CallRecord | None:
    """The stored call, or None."""
    row = session.get(Call, call_id)
    if row is None:
        return None
    return CallRecord(
        call_id=row.id, customer_id=row.customer_id, transport=row.transport,
        outcome=row.outcome, ended_by=row.ended_by, duration_ms=row.duration_ms,
        handoff_id=row.handoff_id, recording_path=row.recording_path,
        transcript_path=row.transcript_path, error=row.error,
        started_at=row.started_at, ended_at=row.ended_at,
    )

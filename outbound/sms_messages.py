"""Text messages in the database: written before they go to the gateway, moved forward by
delivery reports, and customers' replies with what became of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.vocabulary import SmsStatus
from outbound import popups
from outbound.sms_rules import status_after_report
from persistence import store
from persistence.claims import claim_rows
from persistence.schema import Customer, SmsMessage

CONVERSATION_GAP = timedelta(hours=24)
"""A reply within this long of the customer's last one continues its conversation."""


@dataclass(frozen=True)
class SmsRecord:
    """One stored message."""

    id: int
    direction: str
    phone: str
    text: str
    status: SmsStatus
    customer_id: str | None
    campaign_id: str | None
    variant: str | None
    conversation_id: str | None
    dlr_code: int | None
    detail: str | None


def _record(row: SmsMessage) -> SmsRecord:
    return SmsRecord(row.id, row.direction, row.phone, row.text, row.status, row.customer_id,
                     row.campaign_id, row.variant, row.conversation_id, row.dlr_code, row.detail)


def queue(session: Session, *, phone: str, text: str, gateway: str, now: datetime,
          customer_id: str | None = None, campaign_id: str | None = None,
          template: str | None = None, variant: str | None = None,
          conversation_id: str | None = None) -> int:
    """Writes an outgoing message (``queued``); returns its id, which its reports carry."""
    row = SmsMessage(
        direction="out", phone=phone, text=text, gateway=gateway, status=SmsStatus.QUEUED,
        customer_id=customer_id, campaign_id=campaign_id, template=template, variant=variant,
        conversation_id=conversation_id, created_at=now, updated_at=now,
    )
    session.add(row)
    session.flush()
    return row.id


def get(session: Session, message_id: int) -> SmsRecord | None:
    row = session.get(SmsMessage, message_id)
    return _record(row) if row is not None else None


def _while_queued(session: Session, message_id: int, **values: object) -> None:
    """Changes a message only while it is still queued: a delivery report racing in first
    has already moved it further, and wins."""
    session.execute(update(SmsMessage).where(SmsMessage.id == message_id,
                                             SmsMessage.status == SmsStatus.QUEUED)
                    .values(**values))


def mark_submitted(session: Session, message_id: int, detail: str, now: datetime) -> None:
    """The gateway took the message."""
    _while_queued(session, message_id, status=SmsStatus.SUBMITTED, submitted_at=now,
                  detail=detail, updated_at=now)


def mark_failed(session: Session, message_id: int, detail: str, now: datetime) -> None:
    """The gateway refused the message; it will not be sent."""
    _while_queued(session, message_id, status=SmsStatus.FAILED, detail=detail, updated_at=now)


def note_gateway_away(session: Session, message_id: int, detail: str, now: datetime) -> None:
    """The gateway could not be reached: the message stays queued, to be sent again."""
    _while_queued(session, message_id, detail=detail, updated_at=now)


def apply_report(session: Session, message_id: int, code: int, answer: str,
                 now: datetime) -> SmsStatus | None:
    """Applies a delivery report; returns the message's status after it, or None for a
    message that is not ours. ``ValueError`` for a code Kannel never sends.

    Kannel sends a message's reports at once and they can race: the change is made only if
    the status is still the one it was computed from (else it is computed again), so a late
    report never overwrites a later one."""
    while True:
        row = session.execute(
            select(SmsMessage.direction, SmsMessage.status, SmsMessage.submitted_at,
                   SmsMessage.sent_at)
            .where(SmsMessage.id == message_id)).one_or_none()
        if row is None or row.direction != "out":
            return None
        status = status_after_report(row.status, code)
        if status == row.status:
            return status  # nothing new: a late or repeated report
        values: dict[str, object] = {"status": status, "dlr_code": code, "updated_at": now}
        if answer:
            values["detail"] = answer[:500]
        if status in (SmsStatus.SENT, SmsStatus.DELIVERED) and row.sent_at is None:
            values["sent_at"] = now  # the phone's report can come before the SMSC's
        if status == SmsStatus.DELIVERED:
            values["delivered_at"] = now
        if row.submitted_at is None:
            values["submitted_at"] = now
        changed = session.execute(
            update(SmsMessage).where(SmsMessage.id == message_id,
                                     SmsMessage.status == row.status)
            .values(**values)).rowcount
        if changed:
            return status


def claim_queued(session: Session, older_than: datetime, now: datetime,
                 limit: int = 100) -> list[SmsRecord]:
    """Takes outgoing messages still queued since before ``older_than`` (their gateway was
    away) to send again. Each is taken by one process only: taking one touches it, so it is
    not older than ``older_than`` for anyone else."""
    query = (select(SmsMessage).where(SmsMessage.direction == "out",
                                      SmsMessage.status == SmsStatus.QUEUED,
                                      SmsMessage.updated_at < older_than)
             .order_by(SmsMessage.id).limit(limit))
    rows = claim_rows(session, query, SmsMessage,
                      still_due=lambda _: (SmsMessage.status == SmsStatus.QUEUED)
                      & (SmsMessage.updated_at < older_than),
                      values={"updated_at": now})
    return [_record(row) for row in rows]


def already_sent(session: Session, campaign_id: str, customer_id: str,
                 template: str | None = None) -> bool:
    """Whether the campaign already has a message for the customer (that did not fail), of
    ``template`` when one is named (a plan may text an offer, then a reminder)."""
    query = select(SmsMessage.id).where(SmsMessage.campaign_id == campaign_id,
                                        SmsMessage.customer_id == customer_id,
                                        SmsMessage.direction == "out",
                                        SmsMessage.status != SmsStatus.FAILED)
    if template is not None:
        query = query.where(SmsMessage.template == template)
    found = session.execute(query.limit(1)).first()
    return found is not None


@dataclass(frozen=True)
class Sender:
    """Who sent a reply, as far as offercall knows."""

    customer_id: str | None
    campaign_id: str | None
    variant: str | None
    conversation_id: str | None
    """The conversation their last reply went to, if it is recent enough to continue."""


def sender_of(session: Session, phone: str, now: datetime) -> Sender:
    """The customer a reply comes from: the one offercall last texted at that number, else the
    one customer with that phone (none when it is unknown or shared)."""
    last_out = session.execute(
        select(SmsMessage).where(SmsMessage.phone == phone, SmsMessage.direction == "out",
                                 SmsMessage.customer_id.is_not(None))
        .order_by(SmsMessage.id.desc()).limit(1)).scalar_one_or_none()
    last_in = session.execute(
        select(SmsMessage).where(SmsMessage.phone == phone, SmsMessage.direction == "in",
                                 SmsMessage.conversation_id.is_not(None))
        .order_by(SmsMessage.id.desc()).limit(1)).scalar_one_or_none()
    conversation = (last_in.conversation_id
                    if last_in is not None and now - last_in.created_at < CONVERSATION_GAP else None)
    if last_out is not None:
        return Sender(last_out.customer_id, last_out.campaign_id, last_out.variant, conversation)
    ids = list(session.scalars(select(Customer.customer_id).where(Customer.phone == phone).limit(2)))
    return Sender(ids[0] if len(ids) == 1 else None, None, None, conversation)


def record_reply(session: Session, *, phone: str, text: str, gateway: str, now: datetime,
                 sender: Sender, gateway_ref: str | None = None) -> int | None:
    """Writes a customer's reply (``received``); returns its id, or None when the gateway
    delivered it before (the same ``gateway_ref``) and it was handled then. One delivered
    before but not handled (the process died mid-way) is handled again, under its first id."""
    if gateway_ref:
        earlier = session.execute(select(SmsMessage).where(
            SmsMessage.direction == "in", SmsMessage.gateway == gateway,
            SmsMessage.gateway_ref == gateway_ref)).scalar_one_or_none()
        if earlier is not None:
            return None if earlier.detail else earlier.id
    row = SmsMessage(
        direction="in", phone=phone, text=text, gateway=gateway, status=SmsStatus.RECEIVED,
        customer_id=sender.customer_id, campaign_id=sender.campaign_id, variant=sender.variant,
        gateway_ref=gateway_ref, created_at=now, updated_at=now,
    )
    session.add(row)
    session.flush()
    return row.id


def opt_out(session: Session, reply_id: int, now: datetime) -> None:
    """Puts the reply's number (and its customer, when known) on the do-not-contact list, and
    withdraws the customer's pending app pop-ups."""
    row = session.get(SmsMessage, reply_id)
    if row is None:
        raise ValueError(f"no reply {reply_id}")
    row.detail, row.updated_at = "opt_out", now
    store.add_do_not_contact(session, customer_id=row.customer_id, phone=row.phone,
                             utterance=row.text, conversation_id=row.conversation_id, source="sms")
    if row.customer_id:
        popups.withdraw_for_customer(session, row.customer_id, now)


def note(session: Session, message_id: int, detail: str, now: datetime) -> None:
    """Notes what became of a message."""
    row = session.get(SmsMessage, message_id)
    if row is not None:
        row.detail, row.updated_at = detail, now


def link_conversation(session: Session, reply_id: int, conversation_id: str, detail: str,
                      now: datetime) -> None:
    """Notes where a reply went: the conversation and ``bot`` or ``agent``."""
    row = session.get(SmsMessage, reply_id)
    if row is not None:
        row.conversation_id, row.detail, row.updated_at = conversation_id, detail, now


def counts(session: Session, campaign_id: str) -> dict[str, int]:
    """A campaign's messages by status, and its replies (``received``)."""
    rows = session.execute(
        select(SmsMessage.status, func.count()).where(SmsMessage.campaign_id == campaign_id)
        .group_by(SmsMessage.status)).all()
    return {str(status): n for status, n in rows}

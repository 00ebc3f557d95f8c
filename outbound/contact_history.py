"""Contact history from the records: every text, pop-up and call a customer had, and whether
they responded; and the customers' profiles. What response prediction learns from.

Responded means:

- a call: the customer said they were interested, or was put through to an agent;
- a text: the customer opened a chat (the text carries its link) or replied with anything but
  an opt-out within :data:`RESPONSE_WINDOW`, and before their next contact (a chat is the
  response to the last contact before it);
- a pop-up: the customer tapped it.

:func:`store_synthetic` writes ``outbound.synthetic_history``'s made-up history as the same
records (customers ``SYN-…``, one finished campaign named as synthetic), so the demo learns
through exactly the code that reads real history.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.masking import mask_name
from core.vocabulary import DialOutcome, PopupStatus, SmsStatus
from outbound.response_features import Contact, Profile
from outbound.sms_rules import is_opt_out
from outbound.synthetic_history import CUSTOMER_PREFIX, SyntheticHistory
from persistence.schema import (
    AppPopup,
    CallAttempt,
    Campaign,
    CampaignTarget,
    Conversation,
    Customer,
    Offer,
    SmsMessage,
)

RESPONSE_WINDOW = timedelta(hours=72)
SENT = (SmsStatus.SUBMITTED, SmsStatus.SENT, SmsStatus.DELIVERED)
SEEN = (PopupStatus.SHOWN, PopupStatus.CLICKED, PopupStatus.DISMISSED)
SYNTHETIC_CAMPAIGN = "synthetic-history"
SYNTHETIC_NAME = "合成触达历史（演示数据，非真实客户）"


def profiles(session: Session, customer_ids: Iterable[str] | None = None) -> dict[str, Profile]:
    """Customers with their active offer (or none), by id; all of them without ``customer_ids``."""
    query = (select(Customer.customer_id, Customer.segment, Customer.region, Customer.gender,
                    Offer.amount_yuan, Offer.rate_min, Offer.term_months)
             .outerjoin(Offer, (Offer.customer_id == Customer.customer_id) & Offer.active))
    wanted = None if customer_ids is None else list(customer_ids)
    rows = []
    if wanted is None:
        rows = session.execute(query).all()
    else:
        for start in range(0, len(wanted), 5000):
            rows += session.execute(query.where(
                Customer.customer_id.in_(wanted[start:start + 5000]))).all()
    return {r.customer_id: Profile(r.customer_id, r.segment or "", r.region or "", r.gender,
                                   r.amount_yuan, float(r.rate_min) if r.rate_min else None,
                                   r.term_months) for r in rows}


def _local_hour(at: datetime, zone: ZoneInfo) -> int:
    return at.astimezone(zone).hour


def _engaged(session: Session, before: datetime | None) -> dict[str, list[datetime]]:
    """When each customer opened a chat or sent a reply that was not an opt-out, ascending."""
    times: dict[str, list[datetime]] = {}
    chats = select(Conversation.customer_id, Conversation.started_at).where(
        Conversation.channel == "chat", Conversation.customer_id.is_not(None))
    replies = select(SmsMessage.customer_id, SmsMessage.created_at, SmsMessage.text).where(
        SmsMessage.direction == "in", SmsMessage.customer_id.is_not(None))
    if before is not None:
        chats = chats.where(Conversation.started_at < before)
        replies = replies.where(SmsMessage.created_at < before)
    for customer_id, at in session.execute(chats):
        times.setdefault(customer_id, []).append(at)
    for customer_id, at, text in session.execute(replies):
        if not is_opt_out(text):
            times.setdefault(customer_id, []).append(at)
    for values in times.values():
        values.sort()
    return times


def _answered_within(times: Sequence[datetime], after: datetime, until: datetime | None) -> bool:
    """Whether one of ``times`` is within the response window after ``after`` and before
    ``until`` (the next contact)."""
    index = bisect.bisect_left(times, after)
    end = after + RESPONSE_WINDOW if until is None else min(until, after + RESPONSE_WINDOW)
    return index < len(times) and times[index] < end


def contacts(session: Session, timezone: str = "Asia/Shanghai", *,
             before: datetime | None = None,
             customer_ids: Iterable[str] | None = None) -> list[Contact]:
    """Every text, seen pop-up and finished call (before ``before``, of ``customer_ids``)."""
    zone = ZoneInfo(timezone)
    wanted = None if customer_ids is None else set(customer_ids)
    engaged = _engaged(session, before)
    found: list[Contact] = []

    def keep(customer_id: str | None) -> bool:
        return customer_id is not None and (wanted is None or customer_id in wanted)

    calls = select(CallAttempt.customer_id, CallAttempt.started_at, CallAttempt.variant,
                   CallAttempt.facts, CallAttempt.outcome).where(CallAttempt.status == "done")
    texts = select(SmsMessage.customer_id, SmsMessage.created_at, SmsMessage.variant).where(
        SmsMessage.direction == "out", SmsMessage.status.in_(SENT))
    popups = select(AppPopup.customer_id, AppPopup.shown_at, AppPopup.variant,
                    AppPopup.clicked_at).where(AppPopup.status.in_(SEEN),
                                               AppPopup.shown_at.is_not(None))
    if before is not None:
        calls = calls.where(CallAttempt.started_at < before)
        texts = texts.where(SmsMessage.created_at < before)
        popups = popups.where(AppPopup.shown_at < before)
    for customer_id, at, variant, facts, outcome in session.execute(calls):
        if keep(customer_id):
            facts = facts or {}
            responded = bool(facts.get("interested") or facts.get("transferred")) \
                or outcome == DialOutcome.TRANSFERRED
            found.append(Contact(customer_id, "call", at, _local_hour(at, zone), variant or "",
                                 responded))
    for customer_id, at, variant in session.execute(texts):
        if keep(customer_id):  # whether it was answered is known once every contact is
            found.append(Contact(customer_id, "sms", at, _local_hour(at, zone), variant or "",
                                 False))
    for customer_id, at, variant, clicked_at in session.execute(popups):
        if keep(customer_id):
            found.append(Contact(customer_id, "popup", at, _local_hour(at, zone), variant or "",
                                 clicked_at is not None))
    found.sort(key=lambda c: (c.customer_id, c.at))
    for index, contact in enumerate(found):
        if contact.channel == "sms":
            following = found[index + 1] if index + 1 < len(found) else None
            until = following.at if following and following.customer_id == contact.customer_id \
                else None
            found[index] = replace(contact, responded=_answered_within(
                engaged.get(contact.customer_id, ()), contact.at, until))
    return found


def store_synthetic(session: Session, history: SyntheticHistory, now: datetime,
                    progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """Writes the synthetic customers and their contacts as records (replacing an earlier
    synthetic history); returns how many contacts were written."""
    clear_synthetic(session)
    session.add(Campaign(id=SYNTHETIC_CAMPAIGN, name=SYNTHETIC_NAME, status="done",
                         transport="simulated", config={"synthetic": True},
                         created_at=now, updated_at=now))
    for number, profile in enumerate(history.profiles):
        name = f"合成客户{number + 1:06d}"
        session.add(Customer(customer_id=profile.customer_id, name=name,
                             masked_name=mask_name(name), gender=profile.gender,
                             phone=f"170{number:08d}", region=profile.region,
                             segment=profile.segment, consent=True, created_at=now,
                             updated_at=now))
        session.add(Offer(customer_id=profile.customer_id, product="合成演示贷款",
                          amount_yuan=profile.amount_yuan or 50_000,
                          rate_min=profile.rate_min or 3.6,
                          rate_max=round((profile.rate_min or 3.6) + 0.5, 2),
                          term_months=profile.term_months or 12,
                          valid_until=(now + timedelta(days=90)).date(), version=1, active=True,
                          created_at=now))
    session.flush()
    targets = {}
    for profile in history.profiles:
        target = CampaignTarget(campaign_id=SYNTHETIC_CAMPAIGN, customer_id=profile.customer_id,
                                variant="A", status="done", attempts=0, created_at=now,
                                updated_at=now)
        session.add(target)
        targets[profile.customer_id] = target
    session.flush()
    for index, contact in enumerate(history.contacts):
        _store_contact(session, contact, targets[contact.customer_id], index)
        if index % 2000 == 0:
            progress(index, len(history.contacts))
    session.flush()
    progress(len(history.contacts), len(history.contacts))
    return len(history.contacts)


def _store_contact(session: Session, contact: Contact, target: CampaignTarget,
                   index: int) -> None:
    at = contact.at
    if contact.channel == "call":
        target.attempts += 1
        session.add(CallAttempt(
            target_id=target.id, campaign_id=SYNTHETIC_CAMPAIGN,
            customer_id=contact.customer_id, attempt_no=target.attempts,
            call_id=f"synthetic-{index}", variant=contact.variant, status="done",
            outcome=DialOutcome.TRANSFERRED if contact.responded else DialOutcome.NOT_INTERESTED,
            dialer="synthetic", lease_until=at, started_at=at, ended_at=at + timedelta(minutes=2),
            facts={"answered": True, "right_person": True, "offer_heard": True,
                   "interested": contact.responded, "transferred": contact.responded}))
    elif contact.channel == "sms":
        session.add(SmsMessage(
            direction="out", campaign_id=SYNTHETIC_CAMPAIGN, customer_id=contact.customer_id,
            phone="synthetic", text="（合成短信）", template="offer", variant=contact.variant,
            gateway="synthetic", status=SmsStatus.DELIVERED, created_at=at, submitted_at=at,
            sent_at=at, delivered_at=at, updated_at=at))
        if contact.responded:
            session.add(Conversation(id=f"synthetic-chat-{index}",
                                     customer_id=contact.customer_id, channel="chat",
                                     started_at=at + timedelta(minutes=30),
                                     ended_at=at + timedelta(minutes=40)))
    else:
        session.add(AppPopup(
            campaign_id=SYNTHETIC_CAMPAIGN, customer_id=contact.customer_id,
            title="（合成弹窗）", body="（合成弹窗）", variant=contact.variant,
            status=PopupStatus.CLICKED if contact.responded else PopupStatus.DISMISSED,
            created_at=at, expires_at=at + timedelta(days=3), shown_at=at,
            clicked_at=at if contact.responded else None,
            dismissed_at=None if contact.responded else at, updated_at=at))


def clear_synthetic(session: Session) -> None:
    """Removes an earlier synthetic history (only ``SYN-`` customers and its campaign)."""
    statements = [delete(table).where(column == SYNTHETIC_CAMPAIGN) for table, column in (
        (CallAttempt, CallAttempt.campaign_id), (SmsMessage, SmsMessage.campaign_id),
        (AppPopup, AppPopup.campaign_id), (CampaignTarget, CampaignTarget.campaign_id))]
    statements += [delete(Conversation).where(Conversation.id.like("synthetic-chat-%")),
                   delete(Offer).where(Offer.customer_id.like(f"{CUSTOMER_PREFIX}%")),
                   delete(Customer).where(Customer.customer_id.like(f"{CUSTOMER_PREFIX}%")),
                   delete(Campaign).where(Campaign.id == SYNTHETIC_CAMPAIGN)]
    for statement in statements:
        session.execute(statement.execution_options(synchronize_session=False))

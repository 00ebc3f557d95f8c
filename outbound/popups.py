"""App pop-ups in the database: creating a campaign's pop-up, serving a customer's pending
one, recording what the app reports, withdrawing them, and counting them for the funnel.

Functions take a Session (the caller owns the transaction via ``session_scope``); the rules
are :mod:`outbound.popup_rules`. The do-not-contact list is checked at every step that could
reach the customer: an opted-out customer's pending pop-ups are withdrawn the first time
anything looks at them, so an opt-out recorded anywhere (the bot, the failsafe) takes effect
at once even where nobody called :func:`withdraw_for_customer`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.vocabulary import PopupStatus
from outbound import popup_rules
from outbound.popup_rules import EventRefused, PopupEvent, PopupView
from persistence import store
from persistence.schema import AppPopup, Customer

MAX_TITLE = 100  # oc_app_popups.title
FUNNEL_STEPS = ("created", "shown", "clicked", "dismissed", "withdrawn")
_STAMPS = {PopupEvent.SHOWN: "shown_at", PopupEvent.CLICKED: "clicked_at",
           PopupEvent.DISMISSED: "dismissed_at"}


class PopupError(ValueError):
    """A pop-up command that cannot be carried out; the message says why."""


class PopupNotFound(PopupError):
    """No such pop-up for this customer (whether it exists for another is not said)."""


class PopupRefused(PopupError):
    """The customer cannot get a pop-up (unknown, opted out), or the event contradicts what
    is recorded of the pop-up."""


def _view(row: AppPopup) -> PopupView:
    return PopupView(
        id=row.id, customer_id=row.customer_id, campaign_id=row.campaign_id,
        variant=row.variant, title=row.title, body=row.body, status=PopupStatus(row.status),
        created_at=row.created_at, expires_at=row.expires_at, shown_at=row.shown_at,
        clicked_at=row.clicked_at, dismissed_at=row.dismissed_at,
    )


def _opted_out(session: Session, customer: Customer) -> bool:
    return store.is_do_not_contact(session, customer_id=customer.customer_id, phone=customer.phone)


def create_popup(
    session: Session, *, customer_id: str, title: str, body: str, now: datetime,
    ttl: timedelta, campaign_id: str | None = None, variant: str | None = None,
) -> int:
    """A new pending pop-up for the customer, valid for ``ttl``; its id. When the campaign
    already has an unexpired pending pop-up for the customer, that one's id (no second one).

    :class:`PopupRefused` for an unknown customer or one on the do-not-contact list;
    :class:`PopupError` for an empty or too long title, an empty body or a ``ttl`` that is
    not positive."""
    title, body = title.strip(), body.strip()
    if not title or len(title) > MAX_TITLE:
        raise PopupError(f"a pop-up needs a title of 1 to {MAX_TITLE} characters")
    if not body:
        raise PopupError("a pop-up needs a body")
    if ttl <= timedelta(0):
        raise PopupError("a pop-up's ttl must be positive")
    # locks the customer (PostgreSQL): two creators cannot both find no pending pop-up
    customer = session.execute(
        select(Customer).where(Customer.customer_id == customer_id).with_for_update()
    ).scalar_one_or_none()
    if customer is None:
        raise PopupRefused("no customer has this id")
    if _opted_out(session, customer):
        raise PopupRefused("the customer is on the do-not-contact list")
    if campaign_id is not None:
        existing = session.execute(
            select(AppPopup.id).where(
                AppPopup.customer_id == customer_id, AppPopup.campaign_id == campaign_id,
                AppPopup.status == PopupStatus.PENDING, AppPopup.expires_at > now,
            ).order_by(AppPopup.id.desc()).limit(1)
        ).scalar()
        if existing is not None:
            return existing
    popup = AppPopup(
        campaign_id=campaign_id, customer_id=customer_id, title=title, body=body,
        variant=variant, status=PopupStatus.PENDING, created_at=now, expires_at=now + ttl,
        updated_at=now,
    )
    session.add(popup)
    session.flush()
    return popup.id


def pending_popup(session: Session, customer_id: str, now: datetime) -> PopupView | None:
    """The pop-up the app should show the customer now, or None (also for an unknown
    customer, and for one who opted out: their pending pop-ups are withdrawn here)."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        return None
    if _opted_out(session, customer):
        withdraw_for_customer(session, customer_id, now)
        return None
    rows = session.execute(
        select(AppPopup).where(AppPopup.customer_id == customer_id,
                               AppPopup.status == PopupStatus.PENDING, AppPopup.expires_at > now)
    ).scalars()
    return popup_rules.pick((_view(row) for row in rows), now, opted_out=False)


def record_event(
    session: Session, popup_id: int, customer_id: str, event: PopupEvent | str, now: datetime,
) -> PopupView:
    """Records what the app reports of the customer's pop-up; the pop-up after it.

    :class:`PopupNotFound` when no pop-up of this customer has this id (another customer's
    too); :class:`PopupRefused` when the event contradicts what is recorded. A pending
    pop-up of a customer who has opted out is withdrawn first (and the event refused): the
    caller should commit even when this raises, to keep the withdrawal."""
    wanted = popup_rules.parse_event(event)
    row = session.execute(
        select(AppPopup).where(AppPopup.id == popup_id).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.customer_id != customer_id:
        raise PopupNotFound("no such pop-up")
    if popup_rules.withdrawable(row.status):
        customer = session.get(Customer, customer_id)
        if customer is None or _opted_out(session, customer):
            row.status, row.updated_at = PopupStatus.WITHDRAWN, now
            session.flush()
    try:
        after = popup_rules.step(row.status, wanted)
    except EventRefused as exc:
        raise PopupRefused(str(exc)) from None
    changed = after.status != row.status
    for mark in after.marks:
        if getattr(row, _STAMPS[mark]) is None:
            setattr(row, _STAMPS[mark], now)
            changed = True
    if changed:
        row.status, row.updated_at = after.status, now
        session.flush()
    return _view(row)


def withdraw_for_customer(session: Session, customer_id: str, now: datetime) -> int:
    """Withdraws the customer's pending pop-ups (they opted out); how many."""
    return _withdraw(session, AppPopup.customer_id == customer_id, now)


def withdraw_for_campaign(session: Session, campaign_id: str, now: datetime) -> int:
    """Withdraws the campaign's pending pop-ups (it stopped); how many."""
    return _withdraw(session, AppPopup.campaign_id == campaign_id, now)


def _withdraw(session: Session, which: ColumnElement[bool], now: datetime) -> int:
    done = session.execute(
        update(AppPopup).where(which, AppPopup.status == PopupStatus.PENDING)
        .values(status=PopupStatus.WITHDRAWN, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return done.rowcount


def popup_counts(session: Session, campaign_id: str) -> dict[str, int]:
    """The campaign's pop-up funnel: how many were created, shown, clicked, dismissed and
    withdrawn (clicked and dismissed ones count as shown)."""
    row = session.execute(
        select(func.count(AppPopup.id), func.count(AppPopup.shown_at),
               func.count(AppPopup.clicked_at), func.count(AppPopup.dismissed_at),
               func.count(case((AppPopup.status == PopupStatus.WITHDRAWN, 1))))
        .where(AppPopup.campaign_id == campaign_id)
    ).one()
    return {step: int(count or 0) for step, count in zip(FUNNEL_STEPS, row, strict=True)}

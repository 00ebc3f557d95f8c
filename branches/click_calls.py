"""One-click calls (一键外呼): an account manager asks for a call on their lead; a dialer worker
rings the manager's own phone, then the customer's, and bridges the two (``offercall.click_calls``
does the SIP part). This module is the calls' life in the database.

A call's life (``ClickCallStatus``)::

    requested -> ringing_manager -> ringing_customer -> bridged -> ended
        any of the first four -> failed (nobody answered, busy, refused, a worker that stopped)

The request is refused, with nothing written, when the person may not work the lead (403), has
no phone on their account (422), the lead is not claimed or is closed (409), the customer is on
the do-not-contact list (409), it is outside the calling window in the bank's time zone (422),
or a call for the lead is already in progress (409): ``oc_click_calls.live_lead_id`` is unique,
so of two requests at once one is refused. The worker re-checks the do-not-contact list and the
window when it takes the call, as the dialer does before each of the bot's calls.

A worker takes a request with a compare-and-set (``UPDATE … WHERE status = 'requested'``): of
two workers, one places it. It holds the call under a lease it renews; a call whose lease lapsed
(its worker stopped) is closed as ``interrupted``, and a request no worker took within
``request_ttl`` as ``not_placed``, so the lead is free for another call.

The outcome goes on the lead's history (a ``note`` event: who called, when, how long, how it
ended, the recording), and the lead's ``contacted`` step is recorded once the customer answered.
Customers' numbers leave this module only in a :class:`Placement`, for the worker to dial.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from branches import leads
from branches.leads import WORKING, LeadError, LeadEventKind
from core.access import Permission, Staff, allows
from core.masking import mask_phone
from core.settings import Settings
from core.staff_phones import valid_phone
from core.vocabulary import LeadOutcome, LeadStatus, Role, StrEnum
from outbound.compliance import CallingWindow, in_window, next_window_start
from persistence import store
from persistence.schema import Agent, BranchLead, BranchLeadEvent, ClickCall, Customer

log = logging.getLogger(__name__)


class ClickCallStatus(StrEnum):
    """Where a one-click call is."""

    REQUESTED = "requested"
    """Asked for; no worker has taken it yet."""
    RINGING_MANAGER = "ringing_manager"
    RINGING_CUSTOMER = "ringing_customer"
    """The manager answered; the customer's phone rings."""
    BRIDGED = "bridged"
    """Both answered: they talk, and the call is recorded."""
    ENDED = "ended"
    """They talked, and one of them hung up."""
    FAILED = "failed"
    """It never connected the two (``ClickCall.failure`` says why)."""


LIVE = frozenset(ClickCallStatus) - {ClickCallStatus.ENDED, ClickCallStatus.FAILED}
"""Not over yet: the lead has a call in progress."""
PLACING = LIVE - {ClickCallStatus.REQUESTED}
"""Held by a worker."""


class Refusal(StrEnum):
    """Why a one-click call is not placed (``ClickCallError.reason``, ``ClickCall.failure``)."""

    NO_PHONE = "no_phone"
    NOT_CLAIMED = "not_claimed"
    CLOSED = "closed"
    DO_NOT_CONTACT = "do_not_contact"
    OUTSIDE_WINDOW = "outside_window"
    IN_PROGRESS = "in_progress"


class ClickCallError(LeadError):
    """A one-click call that cannot be asked for or shown: ``status`` as for leads, and
    ``reason`` (a :class:`Refusal`) for the refusals the page explains."""

    def __init__(self, status: int, message: str, reason: Refusal | None = None) -> None:
        super().__init__(status, message)
        self.reason = reason


@dataclass(frozen=True)
class ClickCallPolicy:
    """When one-click calls may be made and how long a worker may hold one."""

    window: CallingWindow = field(default_factory=CallingWindow)
    """The bank's calling hours, in its time zone (the bot's default: 09:00-20:00)."""
    request_ttl: timedelta = timedelta(seconds=60)
    """A request no worker took within this is closed (``not_placed``)."""
    lease: timedelta = timedelta(seconds=30)
    """A worker renews its calls' leases every tick; one lapsed means the worker stopped."""

    @classmethod
    def in_zone(cls, timezone: str) -> ClickCallPolicy:
        """The default hours in the bank's time zone (``Settings.timezone``)."""
        return cls(window=CallingWindow(timezone=timezone))

    @classmethod
    def from_settings(cls, settings: Settings) -> ClickCallPolicy:
        """The deployment's hours (``OFFERCALL_CLICK_CALL_HOURS``) and non-calling days
        (``OFFERCALL_HOLIDAYS``) in its time zone."""
        start, end = settings.click_call_hours
        return cls(window=CallingWindow(start=start, end=end, timezone=settings.timezone,
                                        holidays=settings.holidays))


@dataclass(frozen=True)
class ClickCallView:
    """A one-click call as the pages show it (the customer's number masked)."""

    id: int
    lead_id: int
    customer_id: str
    masked_phone: str
    manager_id: int
    status: ClickCallStatus
    requested_at: datetime
    manager_answered_at: datetime | None
    customer_answered_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    ended_by: str | None
    recording_path: str | None
    failure: str | None

    @property
    def live(self) -> bool:
        return self.status in LIVE


@dataclass(frozen=True)
class Placement:
    """What a worker dials for a call it has taken."""

    call_id: int
    lead_id: int
    customer_id: str
    manager_id: int
    manager_phone: str = field(repr=False)
    customer_phone: str = field(repr=False)


# ------------------------------------------------------------------ phones
def set_phone(session: Session, account_id: int, phone: str | None) -> None:
    """Sets (or, with None or blank, clears) a staff account's own phone."""
    account = session.get(Agent, account_id)
    if account is None:
        raise LookupError(f"no account {account_id}")
    account.phone = valid_phone(phone) if phone and phone.strip() else None
    session.flush()


# ------------------------------------------------------------------ asking
def refusal(on_do_not_contact: bool, window: CallingWindow, now: datetime) -> Refusal | None:
    """Whether compliance forbids calling the customer now (pure): the do-not-contact list
    first, then the calling window."""
    if on_do_not_contact:
        return Refusal.DO_NOT_CONTACT
    if not in_window(window, now):
        return Refusal.OUTSIDE_WINDOW
    return None


def _refused(reason: Refusal, window: CallingWindow, now: datetime) -> ClickCallError:
    if reason == Refusal.DO_NOT_CONTACT:
        return ClickCallError(409, "客户已登记免打扰，不能外呼 (the customer is on the "
                                   "do-not-contact list)", reason)
    try:
        opens = next_window_start(window, now).strftime("%Y-%m-%d %H:%M")
        when = f"，下次可呼叫时间 {opens} (calls may be made again from {opens} {window.timezone})"
    except ValueError:
        when = " (outside the calling window)"
    return ClickCallError(422, f"不在允许外呼的时段内{when}", reason)


def _view(session: Session, row: ClickCall) -> ClickCallView:
    customer = session.get(Customer, row.customer_id)
    return ClickCallView(
        id=row.id, lead_id=row.lead_id, customer_id=row.customer_id,
        masked_phone=mask_phone(customer.phone) if customer is not None else "",
        manager_id=row.manager_id, status=ClickCallStatus(row.status),
        requested_at=row.requested_at, manager_answered_at=row.manager_answered_at,
        customer_answered_at=row.customer_answered_at, ended_at=row.ended_at,
        duration_ms=row.duration_ms, ended_by=row.ended_by, recording_path=row.recording_path,
        failure=row.failure,
    )


def _workable(session: Session, lead_id: int, staff: Staff, now: datetime) -> leads.Lead:
    if not allows(staff.role, Permission.WORK_LEADS):
        raise ClickCallError(403, f"the {staff.role} role may not work leads")
    lead = leads.get_lead(session, lead_id, now)
    if lead is None:
        raise ClickCallError(404, f"no lead {lead_id}")
    if not leads.can_see(staff, lead):
        raise ClickCallError(403, f"lead {lead_id} is not within this account's reach")
    return lead


def request_call(session: Session, lead_id: int, staff: Staff, now: datetime,
                 policy: ClickCallPolicy) -> ClickCallView:
    """Asks for a one-click call from ``staff``'s phone to the lead's customer; refused with a
    ``ClickCallError`` as the module docstring says (nothing is written then)."""
    lead = _workable(session, lead_id, staff, now)
    account = session.get(Agent, staff.account_id)
    if account is None or not account.phone:
        raise ClickCallError(422, "您的账号未登记本人电话，无法一键外呼 (this account has no "
                                  "phone of its own to ring first)", Refusal.NO_PHONE)
    if lead.status == LeadStatus.CLOSED:
        raise ClickCallError(409, f"线索已关闭 (lead {lead_id} is closed)", Refusal.CLOSED)
    if lead.status not in WORKING:
        raise ClickCallError(409, f"请先认领该线索 (lead {lead_id} is not claimed yet: claim it "
                                  "first)", Refusal.NOT_CLAIMED)
    customer = session.get(Customer, lead.customer_id)
    assert customer is not None, "oc_leads.customer_id refers to oc_customers"
    dnc = store.is_do_not_contact(session, customer_id=customer.customer_id, phone=customer.phone)
    refused = refusal(dnc, policy.window, now)
    if refused is not None:
        raise _refused(refused, policy.window, now)
    live = session.execute(select(ClickCall.id).where(ClickCall.live_lead_id == lead_id)).first()
    in_progress = ClickCallError(409, f"该线索正在通话中 (a one-click call for lead {lead_id} "
                                      "is already in progress)", Refusal.IN_PROGRESS)
    if live is not None:
        raise in_progress
    row = ClickCall(lead_id=lead_id, live_lead_id=lead_id, customer_id=lead.customer_id,
                    manager_id=staff.account_id, status=ClickCallStatus.REQUESTED,
                    requested_at=now, detail={})
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise in_progress from None
    log.info("branches.click_call.requested call=%s lead_id=%s manager=%s", row.id, lead_id,
             staff.account_id)
    return _view(session, row)


def get_call(session: Session, call_id: int, staff: Staff, now: datetime) -> ClickCallView:
    """A one-click call for whoever may see its lead; 404 none, 403 out of reach."""
    row = session.get(ClickCall, call_id)
    if row is None:
        raise ClickCallError(404, f"no one-click call {call_id}")
    _workable(session, row.lead_id, staff, now)
    return _view(session, row)


# ------------------------------------------------------------------ the worker's side
def expire(session: Session, now: datetime, policy: ClickCallPolicy) -> list[int]:
    """Closes requests no worker took within ``request_ttl`` (``not_placed``) and calls whose
    worker's lease lapsed (``interrupted``); their ids."""
    stale = list(session.execute(select(ClickCall).where(
        ClickCall.live_lead_id.is_not(None),
        ((ClickCall.status == ClickCallStatus.REQUESTED)
         & (ClickCall.requested_at < now - policy.request_ttl))
        | ((ClickCall.status != ClickCallStatus.REQUESTED) & (ClickCall.lease_until < now)),
    )).scalars())
    closed = []
    for row in stale:
        why = "not_placed" if row.status == ClickCallStatus.REQUESTED else "interrupted"
        if finish(session, row.id, now, failure=why, worker=row.worker):
            closed.append(row.id)
    return closed


def claim_next(session: Session, worker: str, now: datetime,
               policy: ClickCallPolicy) -> Placement | None:
    """Takes the oldest request for ``worker`` (compare-and-set: no two workers take the same
    one), re-checking the do-not-contact list, the window and the manager's phone: a request
    that fails them is closed as failed and the next one tried. None: nothing to place."""
    while True:
        row = session.execute(
            select(ClickCall).where(ClickCall.status == ClickCallStatus.REQUESTED)
            .order_by(ClickCall.requested_at, ClickCall.id).limit(1)).scalar_one_or_none()
        if row is None:
            return None
        taken = session.execute(
            update(ClickCall).where(ClickCall.id == row.id,
                                    ClickCall.status == ClickCallStatus.REQUESTED)
            .values(status=ClickCallStatus.RINGING_MANAGER, worker=worker,
                    lease_until=now + policy.lease)
            .execution_options(synchronize_session=False)).rowcount
        if taken != 1:
            continue  # another worker took it
        session.refresh(row)
        customer = session.get(Customer, row.customer_id)
        manager = session.get(Agent, row.manager_id)
        assert customer is not None
        dnc = store.is_do_not_contact(session, customer_id=customer.customer_id,
                                      phone=customer.phone)
        refused = refusal(dnc, policy.window, now)
        if refused is None and (manager is None or not manager.phone or not manager.active):
            refused = Refusal.NO_PHONE
        if refused is not None:
            finish(session, row.id, now, failure=refused, worker=worker)
            continue
        assert manager is not None and manager.phone
        log.info("branches.click_call.taken call=%s worker=%s", row.id, worker)
        return Placement(row.id, row.lead_id, row.customer_id, row.manager_id,
                         manager.phone, customer.phone)


def _held(call_id: int, worker: str) -> Any:
    return (ClickCall.id == call_id) & (ClickCall.worker == worker) & \
        (ClickCall.live_lead_id.is_not(None))


def advance(session: Session, call_id: int, worker: str, status: ClickCallStatus,
            now: datetime, policy: ClickCallPolicy, **times: datetime) -> bool:
    """The worker's call moved on (``manager_answered_at=`` / ``customer_answered_at=``);
    False when the call is no longer this worker's (it was closed meanwhile)."""
    assert status in PLACING, status
    changed = session.execute(
        update(ClickCall).where(_held(call_id, worker))
        .values(status=status, lease_until=now + policy.lease, **times)
        .execution_options(synchronize_session=False)).rowcount == 1
    if changed and status == ClickCallStatus.BRIDGED:
        _contacted(session, call_id, now)
    return changed


def renew(session: Session, call_ids: Collection[int], worker: str, now: datetime,
          policy: ClickCallPolicy) -> None:
    """The worker still holds these calls."""
    if call_ids:
        session.execute(
            update(ClickCall).where(ClickCall.id.in_(list(call_ids)), ClickCall.worker == worker,
                                    ClickCall.live_lead_id.is_not(None))
            .values(lease_until=now + policy.lease)
            .execution_options(synchronize_session=False))


def _contacted(session: Session, call_id: int, now: datetime) -> None:
    """The customer answered: the lead's ``contacted`` step, by the manager who called."""
    row = session.get(ClickCall, call_id)
    account = session.get(Agent, row.manager_id)
    if account is None:
        return
    staff = Staff(account.id, Role(account.role), account.branch_id)
    try:
        with session.begin_nested():
            leads.record_step(session, row.lead_id, staff, LeadOutcome.CONTACTED, "", now)
    except LeadError as exc:  # moved to another branch or closed meanwhile: the call still counts
        log.info("branches.click_call.not_stepped call=%s lead_id=%s why=%s", call_id,
                 row.lead_id, exc)


FAILURE_TEXT = {
    "manager_no_answer": "客户经理手机无人接听", "manager_busy": "客户经理手机占线",
    "manager_hung_up": "客户经理已挂断", "manager_failed": "客户经理号码无法接通",
    "customer_no_answer": "客户无人接听", "customer_busy": "客户占线",
    "customer_failed": "客户号码无法接通", "no_line": "外呼线路不可用",
    "not_placed": "外呼线路繁忙，未能发起", "interrupted": "通话中断",
    Refusal.DO_NOT_CONTACT: "客户已要求不再联系", Refusal.OUTSIDE_WINDOW: "不在外呼时段",
    Refusal.NO_PHONE: "客户经理未登记本人电话",
}
"""Why a call never connected the two, as the lead's history says it (in Chinese)."""
HUNG_UP_TEXT = {"customer": "客户先挂断", "manager": "客户经理先挂断", "system": "系统结束通话"}


def _duration(ms: int) -> str:
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} 分 {seconds} 秒" if minutes else f"{seconds} 秒"


def finish(session: Session, call_id: int, now: datetime, *, worker: str | None,
           failure: str | None = None, duration_ms: int | None = None,
           ended_by: str | None = None, recording_path: str | None = None,
           detail: dict[str, Any] | None = None) -> bool:
    """Closes the call (``ended`` when the two talked, else ``failed`` with ``failure``) and
    writes it on the lead's history; False when it was closed already."""
    row = session.get(ClickCall, call_id, populate_existing=True)
    if row is None or row.live_lead_id is None or (worker is not None and row.worker != worker
                                                     and row.status != ClickCallStatus.REQUESTED):
        return False
    talked = row.customer_answered_at is not None and failure is None
    status = ClickCallStatus.ENDED if talked else ClickCallStatus.FAILED
    changed = session.execute(
        update(ClickCall).where(ClickCall.id == call_id, ClickCall.live_lead_id.is_not(None),
                                ClickCall.status == row.status)
        .values(status=status, live_lead_id=None, ended_at=now, failure=None if talked else failure,
                duration_ms=duration_ms, ended_by=ended_by, recording_path=recording_path,
                detail={**(row.detail or {}), **(detail or {})})
        .execution_options(synchronize_session=False)).rowcount == 1
    if not changed:
        return False
    account = session.get(Agent, row.manager_id)
    lead = session.get(BranchLead, row.lead_id)
    if talked:
        summary = f"一键外呼：已接通，通话 {_duration(duration_ms or 0)}"
        if ended_by:
            summary += f"，{HUNG_UP_TEXT.get(ended_by, ended_by + ' 挂断')}"
    else:
        summary = f"一键外呼：未接通（{FAILURE_TEXT.get(failure or '', failure)}）"
    actor = f"{account.role if account else 'staff'}:{row.manager_id}"
    session.add(BranchLeadEvent(
        lead_id=row.lead_id, at=now, actor=actor,
        kind=LeadEventKind.NOTE, manager_id=row.manager_id,
        to_branch=lead.branch_id if lead is not None else None, reason=summary,
        detail={"click_call": row.id, "call_status": str(status),
                "failure": None if talked else failure,
                "requested_at": row.requested_at.isoformat(),
                "answered_at": row.customer_answered_at.isoformat() if talked else None,
                "duration_ms": duration_ms if talked else None, "ended_by": ended_by,
                "recording": recording_path},
    ))
    session.flush()
    log.info("branches.click_call.finished call=%s status=%s failure=%s", call_id, status, failure)
    return True

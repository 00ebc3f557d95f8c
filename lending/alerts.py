"""Post-loan alerts in the database: raising them from the customers' settlements, who owns
each, listing them for a manager or a branch, acknowledging one with a note, giving one to
an account manager, and escalating the ones left unacknowledged past their deadline.

Functions take a Session (the caller owns the transaction) and an explicit ``now``, so tests
control the clock; the rules are ``lending.alert_rules``'.

Who owns a customer's alert (decided when it is raised, kept with it):

1. the account manager of the customer's open branch lead (the newest open one), or else of
   their latest lead: the person already following the customer up, at that lead's branch
   (a lead with nobody given it yet, or whose manager's account is off or moved: its branch,
   nobody);
2. else the branch nearest the customer's region (``persistence.branches``), with nobody:
   its branch manager gives it out;
3. else (a region with no branch) no branch: head office's administrators see it.

An alert is one per customer, rule and period (a unique key; raising is ``INSERT … ON
CONFLICT DO NOTHING``, so two scanners at once raise it once). It is ``open`` until
acknowledged, with a note, by whoever may see it; an open alert past ``due_at`` is escalated
once to its branch's managers (``escalated_at``, ``escalated_to``), highlighted on their page,
and stays open until acknowledged. Acknowledging and escalating are compare-and-sets on the
status, so of two at once exactly one wins. Acknowledgements and assignments are audited.

Who sees what (``core.access``): an account manager the alerts given to them; a branch
manager (``manage_branch_alerts``) all of their branch's; an administrator all.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from branches.leads import OPEN
from core.access import Permission, Staff, allows, reaches
from core.masking import mask_phone
from core.vocabulary import AlertRule, AlertStatus, AuditAction, Role, StrEnum
from lending.alert_policy import AlertPolicy
from lending.alert_rules import Finding, Settlement, evaluate, unseen
from lending.errors import AlertError
from persistence import audit
from persistence.audit import Actor
from persistence.branches import nearest_branch_of
from persistence.schema import Agent, BranchLead, Customer, PostLoanAlert
from persistence.schema import Settlement as SettlementRecord

log = logging.getLogger(__name__)

SYSTEM = "system:alerts"
NOTE_MAX = 2000
CHUNK = 500
"""Customers judged per query."""
OWNER_ROLES = frozenset({Role.ACCOUNT_MANAGER, Role.BRANCH_MANAGER})
"""Whom an alert may be given to (of its branch)."""


class StatusFilter(StrEnum):
    """Which alerts a list shows."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ALL = "all"


# --------------------------------------------------------------------- views
@dataclass(frozen=True)
class Owner:
    """Whose a customer's alert is, and why."""

    branch_id: str | None
    manager_id: int | None
    reason: str


@dataclass(frozen=True)
class Alert:
    """An alert as the managers' page shows it (the customer masked)."""

    id: int
    customer_id: str
    masked_name: str
    masked_phone: str
    region: str
    rule: AlertRule
    period: str
    figures: dict[str, Any]
    summary: str
    branch_id: str | None
    manager_id: int | None
    owner_reason: str
    status: AlertStatus
    raised_at: datetime
    due_at: datetime
    escalated_at: datetime | None
    escalated_to: tuple[int, ...]
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    note: str | None
    overdue: bool
    """Open and past its deadline at the time it was read."""

    @property
    def is_open(self) -> bool:
        return self.status == AlertStatus.OPEN


@dataclass(frozen=True)
class Escalation:
    """An alert the scan escalated to its branch's managers."""

    alert_id: int
    branch_id: str | None
    to: tuple[int, ...]
    due_at: datetime


@dataclass(frozen=True)
class ScanResult:
    """What one scan did."""

    raised: list[Alert]
    escalated: list[Escalation]


def _view(row: PostLoanAlert, customer: Customer, now: datetime) -> Alert:
    status = AlertStatus(row.status)
    return Alert(
        id=row.id, customer_id=row.customer_id, masked_name=customer.masked_name,
        masked_phone=mask_phone(customer.phone), region=customer.region, rule=AlertRule(row.rule),
        period=row.period, figures=dict(row.figures), summary=row.summary,
        branch_id=row.branch_id, manager_id=row.manager_id, owner_reason=row.owner_reason,
        status=status, raised_at=row.raised_at, due_at=row.due_at,
        escalated_at=row.escalated_at, escalated_to=tuple(row.escalated_to or ()),
        acknowledged_at=row.acknowledged_at, acknowledged_by=row.acknowledged_by, note=row.note,
        overdue=status == AlertStatus.OPEN and row.due_at < now,
    )


def _views(session: Session, rows: Sequence[PostLoanAlert], now: datetime) -> list[Alert]:
    ids = sorted({row.customer_id for row in rows})
    customers = {c.customer_id: c for c in session.execute(
        select(Customer).where(Customer.customer_id.in_(ids))).scalars()} if ids else {}
    return [_view(row, customers[row.customer_id], now) for row in rows]


def _require_aware(now: datetime) -> None:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")


# --------------------------------------------------------------------- owners
def owner_of(session: Session, customer: Customer) -> Owner:
    """Whose the customer's alerts are (see the module docstring)."""
    lead = session.execute(
        select(BranchLead).where(BranchLead.customer_id == customer.customer_id)
        .order_by(BranchLead.status.in_(sorted(OPEN)).desc(), BranchLead.id.desc()).limit(1)
    ).scalar_one_or_none()
    if lead is not None:
        which = "在办线索" if lead.status in OPEN else "最近一条线索"
        manager = session.get(Agent, lead.manager_id) if lead.manager_id is not None else None
        if manager is not None and manager.active and manager.branch_id == lead.branch_id:
            return Owner(lead.branch_id, manager.id,
                         f"客户{which} #{lead.id} 的客户经理 {manager.display_name}")
        return Owner(lead.branch_id, None,
                     f"客户{which} #{lead.id} 所在支行 {lead.branch_id}，"
                     "尚无客户经理，待支行经理分配")
    branch = nearest_branch_of(session, customer.region)
    if branch is not None:
        return Owner(branch, None,
                     f"客户所在地区（{customer.region}）最近的支行 {branch}，待支行经理分配")
    return Owner(None, None, f"客户所在地区（{customer.region}）没有对应支行，由总行处理")


# --------------------------------------------------------------------- raising
def _chunks(values: Sequence[str], size: int = CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _window_start(today: date) -> date:
    """The first day of the month before the month judged: the rules read nothing older
    (besides each customer's latest date)."""
    first = today.replace(day=1)
    for _ in range(2):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def _insert_new(session: Session, values: dict[str, Any]) -> int | None:
    """INSERT … ON CONFLICT (customer, rule, period) DO NOTHING; the new id, or None."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(PostLoanAlert).values(**values).on_conflict_do_nothing(
        index_elements=["customer_id", "rule", "period"])
    if session.execute(statement).rowcount != 1:
        return None
    return session.execute(select(PostLoanAlert.id).where(
        PostLoanAlert.customer_id == values["customer_id"], PostLoanAlert.rule == values["rule"],
        PostLoanAlert.period == values["period"])).scalar_one()


def raise_alerts(session: Session, now: datetime, policy: AlertPolicy, *,
                 customer_ids: Collection[str] | None = None) -> list[Alert]:
    """Judges the settlements of ``customer_ids`` (every customer with settlements when None)
    as of the bank's local date at ``now``, and raises each finding not raised before;
    returns the new alerts."""
    _require_aware(now)
    today = policy.today(now)
    latest = select(SettlementRecord.customer_id, func.max(SettlementRecord.settled_on)) \
        .where(SettlementRecord.settled_on <= today).group_by(SettlementRecord.customer_id)
    if customer_ids is not None:
        wanted = sorted(set(customer_ids))
        last_on = {cid: on for chunk in _chunks(wanted) for cid, on in session.execute(
            latest.where(SettlementRecord.customer_id.in_(chunk)))}
    else:
        last_on = dict(session.execute(latest).all())
    raised: list[Alert] = []
    for chunk in _chunks(sorted(last_on)):
        raised += _raise_for(session, chunk, last_on, today, now, policy)
    return raised


def _raise_for(session: Session, customer_ids: Sequence[str], last_on: Mapping[str, date],
               today: date, now: datetime, policy: AlertPolicy) -> list[Alert]:
    series: dict[str, list[Settlement]] = defaultdict(list)
    for cid, on, fen, payer in session.execute(
            select(SettlementRecord.customer_id, SettlementRecord.settled_on,
                   SettlementRecord.amount_fen, SettlementRecord.payer)
            .where(SettlementRecord.customer_id.in_(customer_ids),
                   SettlementRecord.settled_on >= _window_start(today),
                   SettlementRecord.settled_on <= today)):
        series[cid].append(Settlement(on, fen, payer))
    found = {cid: evaluate(series[cid], today, policy.thresholds, last_on=last_on[cid])
             for cid in customer_ids}
    found = {cid: findings for cid, findings in found.items() if findings}
    if not found:
        return []
    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for cid, rule, period in session.execute(
            select(PostLoanAlert.customer_id, PostLoanAlert.rule, PostLoanAlert.period)
            .where(PostLoanAlert.customer_id.in_(sorted(found)))):
        seen[cid].add((str(rule), period))
    raised = []
    for cid, findings in found.items():
        fresh = unseen(findings, seen[cid])
        if not fresh:
            continue
        customer = session.get(Customer, cid)
        assert customer is not None, "oc_settlements.customer_id refers to oc_customers"
        owner = owner_of(session, customer)
        for finding in fresh:
            alert = _raise(session, customer, finding, owner, now, policy)
            if alert is not None:
                raised.append(alert)
    return raised


def _raise(session: Session, customer: Customer, finding: Finding, owner: Owner,
           now: datetime, policy: AlertPolicy) -> Alert | None:
    alert_id = _insert_new(session, {
        "customer_id": customer.customer_id, "rule": finding.rule, "period": finding.period,
        "figures": finding.figures(), "summary": finding.summary(), "branch_id": owner.branch_id,
        "manager_id": owner.manager_id, "owner_reason": owner.reason,
        "status": AlertStatus.OPEN, "raised_at": now, "due_at": now + policy.ack_within,
        "updated_at": now})
    if alert_id is None:
        return None  # another scanner raised it meanwhile
    log.info("lending.alert.raised alert_id=%s rule=%s period=%s branch=%s manager=%s",
             alert_id, finding.rule, finding.period, owner.branch_id, owner.manager_id)
    row = session.get(PostLoanAlert, alert_id)
    assert row is not None
    return _view(row, customer, now)


# --------------------------------------------------------------------- reading
def can_see(staff: Staff, branch_id: str | None, manager_id: int | None) -> bool:
    """Whether an alert of ``branch_id`` given to ``manager_id`` is within this person's reach."""
    if not allows(staff.role, Permission.WORK_ALERTS):
        return False
    if allows(staff.role, Permission.MANAGE_BRANCH_ALERTS):
        return reaches(staff, branch_id)
    return manager_id == staff.account_id and reaches(staff, branch_id)


def _order(alerts: list[Alert]) -> list[Alert]:
    """Open first (escalated ones first, then the soonest due), then acknowledged, newest first."""
    def key(alert: Alert) -> tuple:
        if alert.is_open:
            return (0, alert.escalated_at is None, alert.due_at.timestamp(), alert.id)
        return (1, False, -(alert.acknowledged_at or alert.raised_at).timestamp(), -alert.id)
    return sorted(alerts, key=key)


def alerts_for(session: Session, staff: Staff, now: datetime, *,
               status: StatusFilter = StatusFilter.OPEN, branch: str | None = None,
               limit: int = 500) -> list[Alert]:
    """The alerts this person may see (``branch``: one branch's, for head office), open
    escalated ones first."""
    query = select(PostLoanAlert)
    if status is not StatusFilter.ALL:
        query = query.where(PostLoanAlert.status == AlertStatus(status.value))
    if not allows(staff.role, Permission.WORK_ALERTS):
        return []
    if not allows(staff.role, Permission.MANAGE_BRANCH_ALERTS):
        query = query.where(PostLoanAlert.manager_id == staff.account_id)
    if branch is not None:
        query = query.where(PostLoanAlert.branch_id == branch)
    elif staff.role in (Role.BRANCH_MANAGER, Role.ACCOUNT_MANAGER):
        query = query.where(PostLoanAlert.branch_id == staff.branch_id)
    rows = session.execute(query.order_by(PostLoanAlert.id.desc()).limit(limit)).scalars().all()
    visible = [row for row in rows if can_see(staff, row.branch_id, row.manager_id)]
    return _order(_views(session, visible, now))


def get_alert(session: Session, alert_id: int, staff: Staff, now: datetime) -> Alert:
    """One alert this person may see; 404 none, 403 out of reach."""
    row = _get(session, alert_id, staff)
    return _views(session, [row], now)[0]


def _get(session: Session, alert_id: int, staff: Staff) -> PostLoanAlert:
    query = select(PostLoanAlert).where(PostLoanAlert.id == alert_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()
    if row is None:
        raise AlertError(404, f"no alert {alert_id}")
    if not can_see(staff, row.branch_id, row.manager_id):
        raise AlertError(403, f"alert {alert_id} is not within this account's reach")
    return row


def _actor(session: Session, staff: Staff) -> Actor:
    username = session.execute(select(Agent.username).where(Agent.id == staff.account_id)).scalar()
    return Actor(username or f"{staff.role}:{staff.account_id}", staff.role, staff.account_id)


# --------------------------------------------------------------------- acting on one
def acknowledge(session: Session, alert_id: int, staff: Staff, note: str, now: datetime) -> Alert:
    """Acknowledges an open alert with the note, by whoever may see it (audited). 400 no
    note, 403 out of reach, 404 no alert, 409 acknowledged already."""
    _require_aware(now)
    note = note.strip()
    if not note:
        raise AlertError(400, "an acknowledgement needs a note")
    if len(note) > NOTE_MAX:
        raise AlertError(400, f"the note is longer than {NOTE_MAX} characters")
    row = _get(session, alert_id, staff)
    if row.status != AlertStatus.OPEN:
        raise AlertError(409, f"alert {alert_id} was acknowledged already "
                              f"({row.acknowledged_at.isoformat() if row.acknowledged_at else ''})")
    changed = session.execute(
        update(PostLoanAlert)
        .where(PostLoanAlert.id == alert_id, PostLoanAlert.status == AlertStatus.OPEN)
        .values(status=AlertStatus.ACKNOWLEDGED, acknowledged_at=now,
                acknowledged_by=staff.account_id, note=note, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise AlertError(409, f"alert {alert_id} was just acknowledged by someone else")
    audit.record(session, _actor(session, staff), AuditAction.ALERT_ACKNOWLEDGED, "alert",
                 str(alert_id), now, customer_id=row.customer_id, rule=str(row.rule),
                 period=row.period, note=note, escalated=row.escalated_at is not None,
                 late=row.due_at < now)
    log.info("lending.alert.acknowledged alert_id=%s by=%s late=%s", alert_id,
             staff.account_id, row.due_at < now)
    return get_alert(session, alert_id, staff, now)


def assign(session: Session, alert_id: int, manager_id: int, staff: Staff,
           now: datetime) -> Alert:
    """A branch manager gives an open alert of their branch to one of its account managers
    (or takes it themselves); head office may give an alert without a branch to anyone's, and
    it becomes that branch's. Audited. 403 not theirs to give, 404 none, 409 acknowledged,
    422 not an active account or branch manager of the alert's branch."""
    _require_aware(now)
    if not allows(staff.role, Permission.MANAGE_BRANCH_ALERTS):
        raise AlertError(403, f"the {staff.role} role may not give out alerts")
    row = _get(session, alert_id, staff)
    if row.status != AlertStatus.OPEN:
        raise AlertError(409, f"alert {alert_id} was acknowledged already")
    account = session.get(Agent, manager_id)
    if account is None or not account.active or account.role not in OWNER_ROLES \
            or account.branch_id is None \
            or (row.branch_id is not None and account.branch_id != row.branch_id):
        raise AlertError(422, f"account {manager_id} is not an account manager of branch "
                              f"{row.branch_id or '(any)'}")
    before = row.manager_id
    changed = session.execute(
        update(PostLoanAlert)
        .where(PostLoanAlert.id == alert_id, PostLoanAlert.status == AlertStatus.OPEN)
        .values(manager_id=manager_id, branch_id=account.branch_id, updated_at=now,
                owner_reason=f"支行经理指定给 {account.display_name}")
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise AlertError(409, f"alert {alert_id} was just acknowledged")
    audit.record(session, _actor(session, staff), AuditAction.ALERT_ASSIGNED, "alert",
                 str(alert_id), now, customer_id=row.customer_id, manager_id=manager_id,
                 previous_manager_id=before, branch_id=account.branch_id)
    return get_alert(session, alert_id, staff, now)


# --------------------------------------------------------------------- escalation
def escalate_overdue(session: Session, now: datetime, *, limit: int = 500) -> list[Escalation]:
    """Escalates every open alert past its deadline at ``now`` (up to ``limit`` a call), not
    escalated before, to its branch's active branch managers; returns what it escalated. The
    deadline is inclusive: an alert acknowledged at the very instant it is due is on time."""
    _require_aware(now)
    due = session.execute(
        select(PostLoanAlert.id, PostLoanAlert.branch_id, PostLoanAlert.due_at)
        .where(PostLoanAlert.status == AlertStatus.OPEN, PostLoanAlert.escalated_at.is_(None),
               PostLoanAlert.due_at < now)
        .order_by(PostLoanAlert.due_at, PostLoanAlert.id).limit(limit)).all()
    managers: dict[str | None, list[int]] = {}
    done = []
    for alert_id, branch_id, due_at in due:
        if branch_id not in managers:
            managers[branch_id] = list(session.execute(
                select(Agent.id).where(Agent.role == Role.BRANCH_MANAGER,
                                       Agent.branch_id == branch_id, Agent.active.is_(True))
                .order_by(Agent.id)).scalars()) if branch_id is not None else []
        to = managers[branch_id]
        changed = session.execute(
            update(PostLoanAlert)
            .where(PostLoanAlert.id == alert_id, PostLoanAlert.status == AlertStatus.OPEN,
                   PostLoanAlert.escalated_at.is_(None))
            .values(escalated_at=now, escalated_to=to, updated_at=now)
            .execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            continue  # acknowledged or escalated meanwhile
        if not to:
            log.warning("lending.alert.escalated_to_nobody alert_id=%s branch=%s", alert_id,
                        branch_id)
        log.info("lending.alert.escalated alert_id=%s branch=%s to=%s", alert_id, branch_id, to)
        done.append(Escalation(alert_id, branch_id, tuple(to), due_at))
    return done


def scan(session: Session, now: datetime, policy: AlertPolicy) -> ScanResult:
    """Raises what the rules find on every customer's settlements at ``now``, then escalates
    the alerts past their deadline (``offercall alerts scan``; the worker does the two on
    their own rhythms)."""
    raised = raise_alerts(session, now, policy)
    return ScanResult(raised, escalate_overdue(session, now))

"""Branch leads in the database: opening one, claiming it, each step, re-routing it when its
branch misses a deadline, and the branches' scorecards.

Functions take a Session (the caller owns the transaction via ``session_scope``) and an
explicit ``now``, so tests control the clock. The decisions are the pure rules':
``lead_routing`` picks the branch and its account manager, ``deadlines`` says when a lead is
overdue, ``scorecard`` which branches are suspended. This module reads and writes around them.

A lead's life (``LeadStatus``)::

    assigned -> claimed -> contacted -> verified -> closed (applied, declined, unreachable)
    assigned, claimed, contacted --(a missed claim or verify deadline)--> rerouted: assigned
        to the next nearest branch taking leads, never one it was taken from; then claimed ...

Each branch's time with a lead is an assignment period (``oc_lead_assignments``): it ends
when the lead is closed there or rerouted away, and the branch's scorecard judges its claim
and verification from it. The lead row holds the step times at its current branch; every step
is also a row in ``oc_lead_events`` (who, when, why, from which branch to which).

Every change is a compare-and-set on the lead row: ``UPDATE … WHERE`` it is still in the status,
at the branch and in the assignment period the change was decided on. Of a claim and a re-route
at the same moment, or of two sweepers, exactly one changes the lead; the other finds nothing
changed (a 409, or a lead skipped). On PostgreSQL the sweeper also locks each overdue lead with
``SELECT … FOR UPDATE SKIP LOCKED``, so a second sweeper passes over a lead the first is moving
instead of waiting for it; SQLite's one writer at a time serialises them.

Who may do what (``core.access``): an account manager claims and works only leads of their own
branch given to them (or given to nobody yet, which a claim makes theirs); a branch manager
any lead of their branch, and gives leads to its account managers; an admin anything.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from branches.deadlines import (
    DeadlinePolicy,
    LeadTimes,
    claim_due,
    overdue,
    require_aware,
    verify_due,
)
from branches.geo import Point, by_distance
from branches.lead_routing import Assignment, ManagerAssignment, choose_branch, choose_manager
from branches.regions import resolve_address, resolve_region
from branches.scorecard import LeadFact, Scorecard, ScorecardPolicy, scorecards, suspensions
from core.access import Permission, Staff, allows, reaches
from core.masking import mask_phone
from core.vocabulary import (
    FINAL_LEAD_OUTCOMES,
    AuditAction,
    LeadOutcome,
    LeadSource,
    LeadStatus,
    RerouteReason,
    Role,
    StrEnum,
)
from persistence import audit, store
from persistence.branches import branch_sites, distances
from persistence.schema import (
    Agent,
    Branch,
    BranchLead,
    BranchLeadAssignment,
    BranchLeadEvent,
    BranchLeadSource,
    Customer,
)

log = logging.getLogger(__name__)

DEFAULT_DEADLINES = DeadlinePolicy()  # claim within 2 days, verify within 2 days of the claim
DEFAULT_SCORECARD = ScorecardPolicy()  # 30 days, 80 % on time, judged over 10 leads at least

CLAIMABLE = frozenset({LeadStatus.ASSIGNED, LeadStatus.REROUTED})
"""Waiting for its branch to claim it."""
WORKING = frozenset({LeadStatus.CLAIMED, LeadStatus.CONTACTED, LeadStatus.VERIFIED})
"""Claimed, not closed."""
OPEN = CLAIMABLE | WORKING

CLOSED_HERE = "closed"
"""An assignment period's ``end_reason`` when the lead got its final outcome at that branch
(otherwise the ``RerouteReason`` it was taken away for)."""
SYSTEM = "system:leads"
SWEEPER = "system:lead_sweep"

MANAGER_ROLES = frozenset({Role.ACCOUNT_MANAGER, Role.BRANCH_MANAGER})
"""Whom a lead may be given to (of the lead's branch)."""
_ORDER = {LeadOutcome.CONTACTED: 1, LeadOutcome.VISITED: 2, LeadOutcome.VERIFIED: 3,
          **{outcome: 4 for outcome in FINAL_LEAD_OUTCOMES}}


class LeadError(Exception):
    """A lead operation that cannot be done, with the HTTP status that says why (400 a bad
    value, 403 not this person's, 404 no such lead, 409 the lead is not in a state for it,
    422 it cannot be routed or given to that account)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class LeadEventKind(StrEnum):
    """What one row of a lead's history records."""

    ASSIGNED = "assigned"
    """Opened and routed to a branch (``to_branch``, why that one)."""
    MANAGER = "manager"
    """Given to an account manager (``manager_id``), by the routing or the branch manager."""
    CLAIMED = "claimed"
    CONTACTED = "contacted"
    VISITED = "visited"
    VERIFIED = "verified"
    OUTCOME = "outcome"
    """A final outcome: the lead is closed."""
    REROUTED = "rerouted"
    """Taken from ``from_branch`` (a missed deadline: the reason) and assigned to ``to_branch``."""
    NOTE = "note"
    """A note, or another source event about the customer joining their open lead."""


_STEP_KIND = {LeadOutcome.CONTACTED: LeadEventKind.CONTACTED,
              LeadOutcome.VISITED: LeadEventKind.VISITED,
              LeadOutcome.VERIFIED: LeadEventKind.VERIFIED}

# The history's reasons are in Chinese, as the branch staff read them on the lead's page.
OUTCOME_TEXT = {
    LeadOutcome.CONTACTED: "已联系客户", LeadOutcome.VISITED: "已上门",
    LeadOutcome.VERIFIED: "完成核实", LeadOutcome.APPLIED: "客户已申请",
    LeadOutcome.DECLINED: "客户拒绝", LeadOutcome.UNREACHABLE: "联系不上客户",
}
SOURCE_TEXT = {
    LeadSource.BOT_INTERESTED_NOT_CONNECTED: "有意向未接通人工",
    LeadSource.CALLBACK_TASK: "回电任务未处理", LeadSource.CAMPAIGN_UNREACHED: "外呼未触达",
    LeadSource.PARTNER_INTAKE: "合作方转介", LeadSource.CONTACT_PLAN: "联络计划转网点",
}


# --------------------------------------------------------------------- views
@dataclass(frozen=True)
class Lead:
    """A lead as the branch's pages show it: masked customer, steps, and what is due when."""

    id: int
    customer_id: str
    masked_name: str
    masked_phone: str
    region: str
    product: str | None
    amount_yuan: int | None
    source: LeadSource
    source_ref: str
    branch_id: str
    manager_id: int | None
    status: LeadStatus
    outcome: LeadOutcome | None
    assigned_at: datetime  # at the current branch
    claimed_at: datetime | None
    contacted_at: datetime | None
    verified_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    note: str | None
    claim_due: datetime | None
    """When the current branch must claim it by (None once claimed or closed)."""
    verify_due: datetime | None
    """When it must be verified by (None until claimed, and once verified or closed)."""
    overdue: str | None
    """The deadline it has missed, as its re-route will say (None: on time)."""
    reroutes: int
    """How many branches it was taken from."""

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


@dataclass(frozen=True)
class LeadEvent:
    """One row of a lead's history."""

    id: int
    lead_id: int
    at: datetime
    actor: str
    kind: LeadEventKind
    manager_id: int | None
    from_branch: str | None
    to_branch: str | None
    reason: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class LeadPeriod:
    """One branch's time with a lead (an assignment period)."""

    lead_id: int
    branch_id: str
    distance_km: float | None
    reason: str
    fallback: bool
    manager_id: int | None
    assigned_at: datetime
    claimed_at: datetime | None
    verified_at: datetime | None
    outcome: LeadOutcome | None
    ended_at: datetime | None
    end_reason: str | None  # CLOSED_HERE or a RerouteReason

    def times(self) -> LeadTimes:
        """The deadlines' and the scorecard's view of this period."""
        return _period_times(self)


@dataclass(frozen=True)
class Reroute:
    """A lead the sweeper took from a branch that missed its deadline."""

    lead_id: int
    from_branch: str
    to_branch: str
    missed: RerouteReason
    due: datetime
    reason: str
    manager_id: int | None
    fallback: bool


@dataclass(frozen=True)
class ContactDetails:
    """The customer in full, for the person who must call or visit them (each view audited)."""

    lead_id: int
    customer_id: str
    name: str
    phone: str
    region: str


def _lead_times(row: BranchLead) -> LeadTimes:
    return LeadTimes(assigned_at=row.assigned_at, claimed_at=row.claimed_at,
                     verified_at=row.verified_at, closed_at=row.closed_at)


def _period_times(row: BranchLeadAssignment | LeadPeriod) -> LeadTimes:
    closed = row.end_reason == CLOSED_HERE
    return LeadTimes(
        assigned_at=row.assigned_at, claimed_at=row.claimed_at, verified_at=row.verified_at,
        closed_at=row.ended_at if closed else None,
        rerouted_at=row.ended_at if not closed else None,
    )


def _view(session: Session, row: BranchLead, now: datetime, deadlines: DeadlinePolicy,
          reroutes: int | None = None) -> Lead:
    found = store.get_customer_offer(session, row.customer_id)
    assert found is not None, "oc_leads.customer_id refers to oc_customers"
    times = _lead_times(row)
    is_open = row.status in OPEN
    late = overdue(times, deadlines, now) if is_open else None
    if reroutes is None:
        reroutes = _reroute_counts(session, [row.id]).get(row.id, 0)
    return Lead(
        id=row.id, customer_id=row.customer_id, masked_name=found.masked_name,
        masked_phone=mask_phone(found.phone), region=found.region, product=found.product,
        amount_yuan=found.amount_yuan, source=LeadSource(row.source), source_ref=row.source_ref,
        branch_id=row.branch_id, manager_id=row.manager_id, status=LeadStatus(row.status),
        outcome=LeadOutcome(row.outcome) if row.outcome else None, assigned_at=row.assigned_at,
        claimed_at=row.claimed_at, contacted_at=row.contacted_at, verified_at=row.verified_at,
        closed_at=row.closed_at, created_at=row.created_at, updated_at=row.updated_at,
        note=row.note,
        claim_due=claim_due(times, deadlines) if is_open and row.claimed_at is None else None,
        verify_due=verify_due(times, deadlines) if is_open and row.verified_at is None else None,
        overdue=late.reason if late else None, reroutes=reroutes,
    )


def _reroute_counts(session: Session, lead_ids: Collection[int]) -> dict[int, int]:
    if not lead_ids:
        return {}
    rows = session.execute(
        select(BranchLeadAssignment.lead_id, func.count(BranchLeadAssignment.id))
        .where(BranchLeadAssignment.lead_id.in_(list(lead_ids)))
        .group_by(BranchLeadAssignment.lead_id))
    return {lead_id: count - 1 for lead_id, count in rows}


def _views(session: Session, rows: Iterable[BranchLead], now: datetime,
           deadlines: DeadlinePolicy) -> list[Lead]:
    rows = list(rows)
    counts = _reroute_counts(session, [row.id for row in rows])
    return [_view(session, row, now, deadlines, counts.get(row.id, 0)) for row in rows]


# ---------------------------------------------------------------- reading
def get_lead(session: Session, lead_id: int, now: datetime, *,
             deadlines: DeadlinePolicy = DEFAULT_DEADLINES) -> Lead | None:
    """A lead by id, or None."""
    row = session.get(BranchLead, lead_id)
    return _view(session, row, now, deadlines) if row is not None else None


def _by_due(leads: list[Lead]) -> list[Lead]:
    """Open leads first, the soonest due first; then closed ones, newest first."""
    def key(lead: Lead) -> tuple:
        due = lead.claim_due or lead.verify_due
        if lead.is_open:
            return (0, due is None, due.timestamp() if due else 0.0, lead.id)
        return (1, False, -(lead.closed_at or lead.updated_at).timestamp(), -lead.id)

    return sorted(leads, key=key)


def leads_of_branch(
    session: Session, branch_id: str, now: datetime, *,
    deadlines: DeadlinePolicy = DEFAULT_DEADLINES, include_closed: bool = False,
) -> list[Lead]:
    """The branch's leads (its current ones: those rerouted away are the new branch's), open
    ones by what is due soonest. Check ``Permission.MANAGE_BRANCH_LEADS`` for the branch first
    (``core.access.require(..., branch_scoped=True)``)."""
    query = select(BranchLead).where(BranchLead.branch_id == branch_id)
    if not include_closed:
        query = query.where(BranchLead.status.in_(OPEN))
    return _by_due(_views(session, session.execute(query).scalars(), now, deadlines))


def leads_of_manager(
    session: Session, manager_id: int, now: datetime, *,
    deadlines: DeadlinePolicy = DEFAULT_DEADLINES, include_closed: bool = False,
) -> list[Lead]:
    """The leads given to this account manager, open ones by what is due soonest."""
    query = select(BranchLead).where(BranchLead.manager_id == manager_id)
    if not include_closed:
        query = query.where(BranchLead.status.in_(OPEN))
    return _by_due(_views(session, session.execute(query).scalars(), now, deadlines))


def events_of(session: Session, lead_id: int) -> list[LeadEvent]:
    """A lead's history, oldest first."""
    rows = session.execute(
        select(BranchLeadEvent).where(BranchLeadEvent.lead_id == lead_id)
        .order_by(BranchLeadEvent.id)).scalars()
    return [LeadEvent(
        id=row.id, lead_id=row.lead_id, at=row.at, actor=row.actor, kind=LeadEventKind(row.kind),
        manager_id=row.manager_id, from_branch=row.from_branch, to_branch=row.to_branch,
        reason=row.reason, detail=dict(row.detail),
    ) for row in rows]


def periods_of(session: Session, lead_id: int) -> list[LeadPeriod]:
    """Each branch's time with the lead, in order; the last is the current one if it is open."""
    rows = session.execute(
        select(BranchLeadAssignment).where(BranchLeadAssignment.lead_id == lead_id)
        .order_by(BranchLeadAssignment.id)).scalars()
    return [LeadPeriod(
        lead_id=row.lead_id, branch_id=row.branch_id, distance_km=row.distance_km,
        reason=row.reason, fallback=row.fallback, manager_id=row.manager_id,
        assigned_at=row.assigned_at, claimed_at=row.claimed_at, verified_at=row.verified_at,
        outcome=LeadOutcome(row.outcome) if row.outcome else None, ended_at=row.ended_at,
        end_reason=row.end_reason,
    ) for row in rows]


def can_see(staff: Staff, lead: Lead) -> bool:
    """Whether the lead is within this person's reach: an account manager's own leads, a
    branch manager's branch, head office's admins every lead."""
    if staff.role == Role.ACCOUNT_MANAGER:
        return reaches(staff, lead.branch_id) and lead.manager_id == staff.account_id
    if allows(staff.role, Permission.MANAGE_BRANCH_LEADS):
        return reaches(staff, lead.branch_id)
    return False


def contact_details(session: Session, lead_id: int, staff: Staff, now: datetime) -> ContactDetails:
    """The customer's full name and phone for whoever works the lead, recorded in the audit
    trail (``UNMASKED_VIEWED``) in the caller's transaction."""
    row = session.get(BranchLead, lead_id)
    if row is None:
        raise LeadError(404, f"no lead {lead_id}")
    if not allows(staff.role, Permission.VIEW_UNMASKED):
        raise LeadError(403, f"the {staff.role} role may not see customers' numbers")
    _check_work(staff, row, claiming=False)
    customer = session.get(Customer, row.customer_id)
    assert customer is not None
    account = session.get(Agent, staff.account_id)
    actor = audit.Actor(account.username if account else _actor(staff), staff.role,
                        staff.account_id)
    audit.record(session, actor, AuditAction.UNMASKED_VIEWED, "customer", row.customer_id, now,
                 lead_id=row.id, shown=["name", "phone"])
    return ContactDetails(row.id, customer.customer_id, customer.name, customer.phone,
                          customer.region)


# --------------------------------------------------------------- scorecards
def _facts(session: Session, now: datetime, policy: ScorecardPolicy) -> dict[str, list[LeadFact]]:
    start = now - timedelta(days=policy.window_days)
    facts: dict[str, list[LeadFact]] = {
        branch_id: [] for branch_id in session.execute(select(Branch.id)).scalars()}
    rows = session.execute(
        select(BranchLeadAssignment)
        .where(BranchLeadAssignment.assigned_at > start, BranchLeadAssignment.assigned_at <= now)
    ).scalars()
    for row in rows:
        outcome = LeadOutcome(row.outcome) if row.outcome else None
        facts.setdefault(row.branch_id, []).append(LeadFact(_period_times(row), outcome))
    return facts


def branch_scorecards(
    session: Session, now: datetime, deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    policy: ScorecardPolicy = DEFAULT_SCORECARD,
) -> dict[str, Scorecard]:
    """Every branch's scorecard at ``now``, over its assignment periods in the policy's window
    (a branch with no leads has an empty one)."""
    require_aware("now", now)
    return scorecards(_facts(session, now, policy), now, deadlines, policy)


def suspended_branches(
    session: Session, now: datetime, deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    policy: ScorecardPolicy = DEFAULT_SCORECARD,
) -> dict[str, str]:
    """Branch id -> why it gets no new leads now, for the suspended branches."""
    return suspensions(branch_scorecards(session, now, deadlines, policy).values(), policy)


# ------------------------------------------------------------------ writing
def _get(session: Session, lead_id: int) -> BranchLead:
    """The lead row, locked for this transaction on PostgreSQL; 404 when there is none."""
    row = _locked(session, lead_id)
    if row is None:
        raise LeadError(404, f"no lead {lead_id}")
    return row


def _locked(session: Session, lead_id: int, *, skip_locked: bool = False) -> BranchLead | None:
    """The lead row as committed now, locked for this transaction on PostgreSQL (None: missing
    or, with ``skip_locked``, being changed by someone else right now)."""
    query = select(BranchLead).where(BranchLead.id == lead_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=skip_locked)
    return session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def _not_before(now: datetime, *steps: datetime | None) -> datetime:
    """``now``, or the latest earlier step if ``now`` is before it: another process's clock
    may run a little ahead, and a lead's steps must stay in order (``deadlines.LeadTimes``)."""
    return max([now, *(step for step in steps if step is not None)])


def _actor(staff: Staff) -> str:
    return f"{staff.role}:{staff.account_id}"


def _check_work(staff: Staff, row: BranchLead, *, claiming: bool) -> None:
    """403 unless ``staff`` may work this lead (claim it when ``claiming``)."""
    if not allows(staff.role, Permission.WORK_LEADS):
        raise LeadError(403, f"the {staff.role} role may not work leads")
    if not reaches(staff, row.branch_id):
        raise LeadError(403, f"lead {row.id} is branch {row.branch_id}'s, outside this "
                             "account's branch")
    if staff.role == Role.ACCOUNT_MANAGER and row.manager_id != staff.account_id and not (
            claiming and row.manager_id is None):
        raise LeadError(403, f"lead {row.id} is another account manager's")


def _change(session: Session, row: BranchLead, **values: Any) -> BranchLead | None:
    """Compare-and-set: applies ``values`` only if the lead is still in the status, branch and
    assignment period ``row`` was read in. The updated row, or None if it changed meanwhile."""
    result = session.execute(
        update(BranchLead)
        .where(BranchLead.id == row.id, BranchLead.status == row.status,
               BranchLead.branch_id == row.branch_id, BranchLead.assigned_at == row.assigned_at)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return session.get(BranchLead, row.id, populate_existing=True)


def _current_period(session: Session, lead_id: int) -> BranchLeadAssignment:
    period = session.execute(
        select(BranchLeadAssignment)
        .where(BranchLeadAssignment.lead_id == lead_id, BranchLeadAssignment.ended_at.is_(None))
        .order_by(BranchLeadAssignment.id.desc()).limit(1)
    ).scalar_one_or_none()
    assert period is not None, f"open lead {lead_id} has no open assignment period"
    return period


def _event(session: Session, lead_id: int, now: datetime, actor: str, kind: LeadEventKind,
           reason: str, *, manager_id: int | None = None, from_branch: str | None = None,
           to_branch: str | None = None, **detail: Any) -> None:
    session.add(BranchLeadEvent(
        lead_id=lead_id, at=now, actor=actor, kind=kind, manager_id=manager_id,
        from_branch=from_branch, to_branch=to_branch, reason=reason, detail=detail,
    ))


def _insert_new(session: Session, model: type, values: dict[str, Any],
                unique: list[str]) -> bool:
    """INSERT … ON CONFLICT (``unique``) DO NOTHING; True when the row was inserted. A
    concurrent insert of the same key waits for the other transaction, then does nothing."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(model).values(**values).on_conflict_do_nothing(
        index_elements=unique)
    return session.execute(statement).rowcount == 1


def _lead_of_source(session: Session, sources: Collection[LeadSource],
                    source_ref: str) -> BranchLead | None:
    return session.execute(
        select(BranchLead).join(BranchLeadSource, BranchLeadSource.lead_id == BranchLead.id)
        .where(BranchLeadSource.source.in_(list(sources)),
               BranchLeadSource.source_ref == source_ref)
        .limit(1)
    ).scalar_one_or_none()


def lead_of_source(session: Session, source: LeadSource | Collection[LeadSource],
                   source_ref: str, now: datetime, *,
                   deadlines: DeadlinePolicy = DEFAULT_DEADLINES) -> Lead | None:
    """The lead this source event made or joined (any of ``source`` when several), or None."""
    sources = [source] if isinstance(source, str) else list(source)
    row = _lead_of_source(session, sources, source_ref)
    return _view(session, row, now, deadlines) if row is not None else None


def branch_distances(session: Session, customer: Customer) -> dict[str, float]:
    """Branch id -> km from the customer's registered region: the distance table's figures
    where it lists the region (the bank's own, e.g. by road); else straight-line distances
    from the region's county seat (or, when the region is not a county we know, the address's)
    to every branch whose site is known. Empty when neither resolves."""
    region = customer.region.strip()
    listed = distances(session, region).get(region)
    if listed:
        return listed
    division = resolve_region(region) or (resolve_address(customer.address) if customer.address else None)
    sites = branch_sites(session)
    if division is None or not sites:
        return {}
    return dict(by_distance(division.point, {branch_id: Point(lat, lon)
                                             for branch_id, (lat, lon) in sites.items()}))


def _route(session: Session, customer: Customer, exclude: Collection[str],
           suspended: Mapping[str, str]) -> Assignment | None:
    return choose_branch(branch_distances(session, customer), suspensions=suspended, exclude=exclude)


def _choose_manager(session: Session, branch_id: str) -> ManagerAssignment | None:
    """The branch's account manager with the fewest open leads (None: it has none yet)."""
    managers = list(session.execute(
        select(Agent.id).where(Agent.role == Role.ACCOUNT_MANAGER, Agent.branch_id == branch_id,
                               Agent.active.is_(True))).scalars())
    if not managers:
        return None
    load = dict.fromkeys(managers, 0)
    load.update(session.execute(
        select(BranchLead.manager_id, func.count(BranchLead.id))
        .where(BranchLead.manager_id.in_(managers), BranchLead.status.in_(OPEN))
        .group_by(BranchLead.manager_id)).all())
    last = dict(session.execute(
        select(BranchLeadEvent.manager_id, func.max(BranchLeadEvent.at))
        .where(BranchLeadEvent.manager_id.in_(managers),
               BranchLeadEvent.kind == LeadEventKind.MANAGER)
        .group_by(BranchLeadEvent.manager_id)).all())
    return choose_manager(load, last)


def open_lead(
    session: Session, customer_id: str, source: LeadSource | str, source_ref: str,
    now: datetime, *, deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    scorecard_policy: ScorecardPolicy = DEFAULT_SCORECARD,
    suspended: Mapping[str, str] | None = None, actor: str = SYSTEM, note: str = "",
) -> Lead:
    """Makes the customer a branch lead because of one event (``source``, ``source_ref``).

    Idempotent: the same event again gives the same lead. When the customer already has an
    open lead, the event joins it (a note in its history) rather than sending a second person
    to the same customer. Otherwise the lead goes to the nearest branch taking leads (not
    suspended by its scorecard at ``now``: ``suspended`` when the caller computed it for many
    leads), and within it to the account manager with the fewest open leads, or to nobody
    when the branch has no account manager yet (its branch manager gives it out).

    Refused (``LeadError``): an unknown customer (404), one on the do-not-contact list (409),
    one whose region has no branches (422).
    """
    require_aware("now", now)
    try:
        source = LeadSource(source)
    except ValueError:
        raise LeadError(400, f"unknown lead source {source!r}") from None
    if not source_ref or len(source_ref) > 160:
        raise LeadError(400, f"a lead's source_ref must be 1 to 160 characters, got {source_ref!r}")
    existing = _lead_of_source(session, [source], source_ref)
    if existing is not None:
        return _view(session, existing, now, deadlines)
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise LeadError(404, f"no customer {customer_id}")
    if store.is_do_not_contact(session, customer_id=customer_id, phone=customer.phone):
        raise LeadError(409, f"customer {customer_id} asked not to be contacted")
    source_row = {"source": source, "source_ref": source_ref, "at": now}
    joined = session.execute(
        select(BranchLead).where(BranchLead.customer_id == customer_id,
                                 BranchLead.status.in_(OPEN))
        .order_by(BranchLead.id).limit(1)
    ).scalar_one_or_none()
    if joined is not None:
        if not _insert_new(session, BranchLeadSource, {"lead_id": joined.id, **source_row},
                           ["source", "source_ref"]):
            return _view(session, _lead_of_source(session, [source], source_ref), now, deadlines)
        _event(session, joined.id, now, actor, LeadEventKind.NOTE,
               f"客户已有在办线索，新来源并入：{SOURCE_TEXT[source]}（{source_ref}）"
               + (f"：{note}" if note else ""), source=source, source_ref=source_ref)
        session.flush()
        log.info("branches.lead.joined lead_id=%s source=%s", joined.id, source)
        return _view(session, joined, now, deadlines)

    if suspended is None:
        suspended = suspended_branches(session, now, deadlines, scorecard_policy)
    assignment = _route(session, customer, (), suspended)
    if assignment is None:
        raise LeadError(422, f"customer {customer_id}'s region {customer.region!r} has no "
                             "branches: the lead has nowhere to go")
    manager = _choose_manager(session, assignment.branch_id)
    manager_id = manager.manager_id if manager else None
    if not _insert_new(session, BranchLead, {
            "customer_id": customer_id, "source": source, "source_ref": source_ref,
            "branch_id": assignment.branch_id, "manager_id": manager_id,
            "status": LeadStatus.ASSIGNED, "assigned_at": now, "created_at": now,
            "updated_at": now}, ["source", "source_ref"]):
        return _view(session, _lead_of_source(session, [source], source_ref), now, deadlines)
    row = session.execute(select(BranchLead).where(
        BranchLead.source == source, BranchLead.source_ref == source_ref)).scalar_one()
    if not _insert_new(session, BranchLeadSource, {"lead_id": row.id, **source_row},
                       ["source", "source_ref"]):  # it joined another lead meanwhile
        session.delete(row)
        session.flush()
        return _view(session, _lead_of_source(session, [source], source_ref), now, deadlines)
    session.add(BranchLeadAssignment(
        lead_id=row.id, branch_id=assignment.branch_id, distance_km=assignment.distance_km,
        reason=assignment.reason, fallback=assignment.fallback, manager_id=manager_id,
        assigned_at=now,
    ))
    _event(session, row.id, now, actor, LeadEventKind.ASSIGNED, assignment.reason,
           to_branch=assignment.branch_id, source=source, source_ref=source_ref,
           distance_km=assignment.distance_km, fallback=assignment.fallback,
           **({"note": note} if note else {}))
    if manager is not None:
        _event(session, row.id, now, SYSTEM, LeadEventKind.MANAGER, manager.reason,
               manager_id=manager.manager_id, to_branch=assignment.branch_id)
    session.flush()
    log.info("branches.lead.opened lead_id=%s source=%s branch=%s", row.id, source,
             assignment.branch_id)
    return _view(session, row, now, deadlines, 0)


def claim(session: Session, lead_id: int, staff: Staff, now: datetime, *,
          deadlines: DeadlinePolicy = DEFAULT_DEADLINES) -> Lead:
    """The branch takes the lead: it becomes the claimer's when nobody was given it. A claim
    after the deadline but before the sweeper moved the lead is taken (and judged late).
    403 not this person's lead, 409 already claimed, closed, or moved meanwhile."""
    require_aware("now", now)
    row = _get(session, lead_id)
    _check_work(staff, row, claiming=True)
    if row.status not in CLAIMABLE:
        raise LeadError(409, f"lead {lead_id} is already {row.status}")
    now = _not_before(now, row.assigned_at)
    manager_id = row.manager_id if row.manager_id is not None else staff.account_id
    changed = _change(session, row, status=LeadStatus.CLAIMED, claimed_at=now,
                      manager_id=manager_id, updated_at=now)
    if changed is None:
        raise LeadError(409, f"lead {lead_id} was just claimed or moved to another branch")
    period = _current_period(session, lead_id)
    period.claimed_at, period.manager_id = now, manager_id
    _event(session, lead_id, now, _actor(staff), LeadEventKind.CLAIMED,
           f"支行 {changed.branch_id} 认领", manager_id=manager_id,
           to_branch=changed.branch_id)
    session.flush()
    log.info("branches.lead.claimed lead_id=%s branch=%s", lead_id, changed.branch_id)
    return _view(session, changed, now, deadlines)


def record_step(session: Session, lead_id: int, staff: Staff, outcome: LeadOutcome | str,
                note: str, now: datetime, *,
                deadlines: DeadlinePolicy = DEFAULT_DEADLINES) -> Lead:
    """Records how the claimed lead went: ``contacted`` or ``visited`` (the customer reached),
    ``verified`` (the offline verification done, which meets the verify deadline), or a final
    ``applied``, ``declined`` or ``unreachable``, which closes it. 400 an unknown outcome, 403
    not this person's lead, 409 not claimed yet, closed, already verified, or moved meanwhile."""
    require_aware("now", now)
    try:
        outcome = LeadOutcome(outcome)
    except ValueError:
        raise LeadError(400, f"outcome must be one of {', '.join(LeadOutcome)}, "
                             f"got {outcome!r}") from None
    row = _get(session, lead_id)
    _check_work(staff, row, claiming=False)
    if row.status == LeadStatus.CLOSED:
        raise LeadError(409, f"lead {lead_id} is closed ({row.outcome})")
    if row.status in CLAIMABLE:
        raise LeadError(409, f"lead {lead_id} is not claimed yet: claim it first")
    now = _not_before(now, row.assigned_at, row.claimed_at, row.contacted_at, row.verified_at)
    note = note.strip()
    values: dict[str, Any] = {"updated_at": now, "outcome": _furthest(row.outcome, outcome)}
    if note:
        values["note"] = note[:2000]
    if outcome in FINAL_LEAD_OUTCOMES:
        kind = LeadEventKind.OUTCOME
        values.update(status=LeadStatus.CLOSED, closed_at=now)
    elif outcome == LeadOutcome.VERIFIED:
        if row.verified_at is not None:
            raise LeadError(409, f"lead {lead_id} was already verified")
        kind = LeadEventKind.VERIFIED
        values.update(status=LeadStatus.VERIFIED, verified_at=now)
    else:
        kind = _STEP_KIND[outcome]
        if row.contacted_at is None:
            values["contacted_at"] = now
        if row.status == LeadStatus.CLAIMED:
            values["status"] = LeadStatus.CONTACTED
    changed = _change(session, row, **values)
    if changed is None:
        raise LeadError(409, f"lead {lead_id} was just changed or moved to another branch")
    period = _current_period(session, lead_id)
    period.outcome = changed.outcome
    if outcome == LeadOutcome.VERIFIED:
        period.verified_at = now
    if outcome in FINAL_LEAD_OUTCOMES:
        period.ended_at, period.end_reason = now, CLOSED_HERE
    _event(session, lead_id, now, _actor(staff), kind,
           f"{OUTCOME_TEXT[outcome]}（支行 {changed.branch_id}）"
           + (f"：{note[:200]}" if note else ""),
           manager_id=changed.manager_id, to_branch=changed.branch_id, outcome=outcome,
           **({"note": note[:2000]} if note else {}))
    session.flush()
    log.info("branches.lead.step lead_id=%s outcome=%s", lead_id, outcome)
    return _view(session, changed, now, deadlines)


def _furthest(current: str | None, new: LeadOutcome) -> LeadOutcome:
    if current is None:
        return new
    current = LeadOutcome(current)
    return new if _ORDER[new] >= _ORDER[current] else current


def add_note(session: Session, lead_id: int, staff: Staff, note: str, now: datetime, *,
             deadlines: DeadlinePolicy = DEFAULT_DEADLINES) -> Lead:
    """A note on the lead's history (and as its latest note) by whoever may work it."""
    require_aware("now", now)
    note = note.strip()
    if not note:
        raise LeadError(400, "a note needs some text")
    row = _get(session, lead_id)
    _check_work(staff, row, claiming=False)
    row.note, row.updated_at = note[:2000], now
    _event(session, lead_id, now, _actor(staff), LeadEventKind.NOTE, note[:200],
           manager_id=row.manager_id, to_branch=row.branch_id, note=note[:2000])
    session.flush()
    return _view(session, row, now, deadlines)


def assign_manager(session: Session, lead_id: int, manager_id: int, by_staff: Staff,
                   now: datetime, *, deadlines: DeadlinePolicy = DEFAULT_DEADLINES) -> Lead:
    """The branch manager gives an open lead of their branch to one of its account managers
    (or takes it themselves). 403 not their branch, 409 closed or moved meanwhile, 422 the
    account is not an active account or branch manager of the lead's branch."""
    require_aware("now", now)
    if not allows(by_staff.role, Permission.MANAGE_BRANCH_LEADS):
        raise LeadError(403, f"the {by_staff.role} role may not give out leads")
    row = _get(session, lead_id)
    if not reaches(by_staff, row.branch_id):
        raise LeadError(403, f"lead {lead_id} is branch {row.branch_id}'s, outside this "
                             "account's branch")
    if row.status not in OPEN:
        raise LeadError(409, f"lead {lead_id} is {row.status}")
    account = session.get(Agent, manager_id)
    if account is None or not account.active or account.role not in MANAGER_ROLES \
            or account.branch_id != row.branch_id:
        raise LeadError(422, f"account {manager_id} is not an account manager of branch "
                             f"{row.branch_id}")
    if row.manager_id == manager_id:
        return _view(session, row, now, deadlines)
    changed = _change(session, row, manager_id=manager_id, updated_at=now)
    if changed is None:
        raise LeadError(409, f"lead {lead_id} was just changed or moved to another branch")
    _current_period(session, lead_id).manager_id = manager_id
    _event(session, lead_id, now, _actor(by_staff), LeadEventKind.MANAGER,
           f"支行经理交给 {account.display_name}", manager_id=manager_id,
           to_branch=row.branch_id, previous_manager_id=row.manager_id)
    session.flush()
    return _view(session, changed, now, deadlines)


# ---------------------------------------------------------------- the sweep
def _overdue_ids(session: Session, now: datetime, deadlines: DeadlinePolicy,
                 limit: int) -> list[int]:
    """Open leads past a deadline by the columns (``deadlines.overdue`` decides each)."""
    unclaimed = and_(BranchLead.claimed_at.is_(None),
                     BranchLead.assigned_at < now - deadlines.claim_within)
    unverified = and_(BranchLead.claimed_at.is_not(None), BranchLead.verified_at.is_(None),
                      BranchLead.claimed_at < now - deadlines.verify_within)
    return list(session.execute(
        select(BranchLead.id)
        .where(BranchLead.status.in_(OPEN - {LeadStatus.VERIFIED}), or_(unclaimed, unverified))
        .order_by(BranchLead.id).limit(limit)).scalars())


def sweep_overdue(
    session: Session, now: datetime, deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    scorecard_policy: ScorecardPolicy = DEFAULT_SCORECARD, *, limit: int = 500,
) -> list[Reroute]:
    """Re-routes every open lead past its claim or verify deadline at ``now`` (up to ``limit``
    a call) to the nearest branch taking leads that it was never taken from, with the missed
    deadline as the reason; returns what was moved. Several sweepers at once move each lead
    once (see the module docstring)."""
    require_aware("now", now)
    ids = _overdue_ids(session, now, deadlines, limit)
    if not ids:
        return []
    suspended = suspended_branches(session, now, deadlines, scorecard_policy)
    moved = []
    for lead_id in ids:
        row = _locked(session, lead_id, skip_locked=True)
        if row is None or row.status not in OPEN:
            continue  # another sweeper has it, or it was closed meanwhile
        missed = overdue(_lead_times(row), deadlines, now)
        if missed is None:
            continue
        reroute = _reroute(session, row, missed.missed, missed.due, missed.reason, now,
                           suspended, SWEEPER)
        if reroute is not None:
            moved.append(reroute)
    return moved


MANUAL_REASON_MAX = 500


def reroute(session: Session, lead_id: int, staff: Staff, why: str, now: datetime, *,
            to_branch: str | None = None, deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
            scorecard_policy: ScorecardPolicy = DEFAULT_SCORECARD) -> Lead:
    """Moves an open lead by hand (``RerouteReason.MANUAL``, with ``why``): to ``to_branch``,
    or to the nearest branch taking leads it was never taken from. Head office may move any
    lead; a branch manager the leads of their own branch (a customer who moved, say). 400 no
    reason, 403 out of reach, 404 no lead or branch, 409 closed or already at that branch,
    422 no other branch to take it."""
    require_aware("now", now)
    why = " ".join(why.split())
    if not why:
        raise LeadError(400, "a reroute needs its reason")
    if len(why) > MANUAL_REASON_MAX:
        raise LeadError(400, f"the reason is longer than {MANUAL_REASON_MAX} characters")
    row = _get(session, lead_id)
    if not allows(staff.role, Permission.MANAGE_BRANCH_LEADS) or not reaches(staff, row.branch_id):
        raise LeadError(403, f"lead {lead_id} may be moved only by head office or its branch's manager")
    if row.status not in OPEN:
        raise LeadError(409, f"lead {lead_id} is {row.status}: only an open lead moves")
    assignment = None
    if to_branch is not None:
        if session.get(Branch, to_branch) is None:
            raise LeadError(404, f"no branch {to_branch!r}")
        if to_branch == row.branch_id:
            raise LeadError(409, f"lead {lead_id} is already with {to_branch}")
        customer = session.get(Customer, row.customer_id)
        assert customer is not None
        km = branch_distances(session, customer).get(to_branch)
        where = f"（{km:.1f} 公里）" if km is not None else ""
        assignment = Assignment(to_branch, km, f"人工指定{where}")
    suspended = suspended_branches(session, now, deadlines, scorecard_policy)
    moved = _reroute(session, row, RerouteReason.MANUAL, now, f"人工改派：{why}", now,
                     suspended, _actor(staff), assignment=assignment)
    if moved is None:
        raise LeadError(422, f"no other branch can take lead {lead_id}")
    return _view(session, _get(session, lead_id), now, deadlines)


def _reroute(session: Session, row: BranchLead, missed: RerouteReason, due: datetime,
             why: str, now: datetime, suspended: Mapping[str, str], actor: str, *,
             assignment: Assignment | None = None) -> Reroute | None:
    """Ends the lead's time at its branch and assigns it to ``assignment``'s branch, or to the
    nearest branch taking leads it was never taken from."""
    if assignment is None:
        tried = set(session.execute(
            select(BranchLeadAssignment.branch_id)
            .where(BranchLeadAssignment.lead_id == row.id)).scalars())
        customer = session.get(Customer, row.customer_id)
        assert customer is not None
        assignment = _route(session, customer, tried, suspended)
    if assignment is None:
        log.warning("branches.lead.unroutable lead_id=%s region has no branches", row.id)
        return None
    manager = _choose_manager(session, assignment.branch_id)
    manager_id = manager.manager_id if manager else None
    before = row.branch_id
    changed = _change(
        session, row, status=LeadStatus.REROUTED, branch_id=assignment.branch_id,
        manager_id=manager_id, outcome=None, assigned_at=now, claimed_at=None,
        contacted_at=None, verified_at=None, updated_at=now)
    if changed is None:
        return None  # claimed, closed or moved meanwhile
    period = _current_period(session, row.id)
    period.ended_at, period.end_reason = now, missed
    session.add(BranchLeadAssignment(
        lead_id=row.id, branch_id=assignment.branch_id, distance_km=assignment.distance_km,
        reason=assignment.reason, fallback=assignment.fallback, manager_id=manager_id,
        assigned_at=now,
    ))
    reason = f"{why}；改派至 {assignment.branch_id}：{assignment.reason}"
    _event(session, row.id, now, actor, LeadEventKind.REROUTED, reason, from_branch=before,
           to_branch=assignment.branch_id, missed=missed, due=due.isoformat(),
           distance_km=assignment.distance_km, fallback=assignment.fallback)
    if manager is not None:
        _event(session, row.id, now, SYSTEM, LeadEventKind.MANAGER, manager.reason,
               manager_id=manager.manager_id, to_branch=assignment.branch_id)
    session.flush()
    log.info("branches.lead.rerouted lead_id=%s from=%s to=%s missed=%s", row.id, before,
             assignment.branch_id, missed)
    return Reroute(row.id, before, assignment.branch_id, missed, due, reason, manager_id,
                   assignment.fallback)

"""The handoff queue's transactions: enqueue, claim, connect, close, abandon and the SLA sweep.

Functions take a Session (the caller owns the transaction via ``session_scope``) and an
explicit ``now``, so tests control the clock. Every status change is a compare-and-set on
the ticket row plus a row in ``oc_handoff_events``; nothing is ever deleted.

Claims are atomic. On PostgreSQL the claimer locks the row with ``SELECT … FOR UPDATE SKIP
LOCKED``: a second agent clicking at the same moment finds it locked, skips it and is told it
is taken, without waiting. SQLite has no row locks; there the claim is a single conditional
``UPDATE … WHERE status IN (claimable)`` that SQLite's one-writer lock serialises, and only the
statement that changed the row wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from core.vocabulary import AgentOutcome
from handoff import routing, sla
from handoff.agents import AgentAccount, all_accounts
from persistence.handoffs import log_event
from persistence.schema import (
    Customer,
    Handoff,
    HandoffEvent,
    Offer,
)

AGENT_OUTCOMES = tuple(AgentOutcome)


class TicketError(Exception):
    """A ticket operation that cannot be done, with the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Ticket:
    """A handoff ticket with the customer and offer context an agent needs."""

    id: int
    conversation_id: str
    channel: str
    kind: str
    tier: str
    status: str
    reason: str
    intents: list[str]
    transcript: list[dict[str, Any]]
    customer_id: str | None
    offer_id: int | None
    masked_name: str
    full_name: str
    phone: str
    region: str | None
    branch_id: str | None
    product: str | None
    amount_yuan: int | None
    rate_min: float | None
    rate_max: float | None
    term_months: int | None
    language: str
    created_at: datetime
    waiting_since: datetime
    claim_deadline: datetime | None
    callback_due_at: datetime | None
    claimed_by: int | None
    claimed_at: datetime | None
    connected_at: datetime | None
    closed_at: datetime | None
    agent_outcome: str | None
    agent_note: str | None
    transfer_mode: str | None = None
    transfer_target: str | None = None
    transfer_status: str | None = None
    transferred_at: datetime | None = None

    def facts(self) -> routing.TicketFacts:
        """What routing decisions look at."""
        return _facts(self)


@dataclass(frozen=True)
class TicketEvent:
    """One row of a ticket's history."""

    id: int
    handoff_id: int
    from_status: str | None
    to_status: str
    tier: str
    actor: str
    reason: str
    created_at: datetime


# ------------------------------------------------------------------- reading
def _ticket(session: Session, row: Handoff) -> Ticket:
    customer = session.get(Customer, row.customer_id) if row.customer_id else None
    offer = session.get(Offer, row.offer_id) if row.offer_id else None
    return Ticket(
        id=row.id, conversation_id=row.conversation_id, channel=row.channel, kind=row.kind,
        tier=row.tier, status=row.status, reason=row.reason, intents=list(row.intents),
        transcript=list(row.transcript), customer_id=row.customer_id, offer_id=row.offer_id,
        masked_name=customer.masked_name if customer else "", full_name=customer.name if customer else "",
        phone=customer.phone if customer else "", region=row.region, branch_id=row.branch_id,
        product=row.product, amount_yuan=offer.amount_yuan if offer else None,
        rate_min=float(offer.rate_min) if offer else None,
        rate_max=float(offer.rate_max) if offer else None,
        term_months=offer.term_months if offer else None, language=row.language,
        created_at=row.created_at, waiting_since=row.waiting_since or row.created_at,
        claim_deadline=row.claim_deadline, callback_due_at=row.callback_due_at,
        claimed_by=row.claimed_by, claimed_at=row.claimed_at, connected_at=row.connected_at,
        closed_at=row.closed_at, agent_outcome=row.agent_outcome, agent_note=row.agent_note,
        transfer_mode=row.transfer_mode, transfer_target=row.transfer_target,
        transfer_status=row.transfer_status, transferred_at=row.transferred_at,
    )


def get_ticket(session: Session, ticket_id: int) -> Ticket | None:
    """A ticket by id, or None."""
    row = session.get(Handoff, ticket_id)
    return _ticket(session, row) if row is not None else None


def ticket_for_conversation(session: Session, conversation_id: str) -> Ticket | None:
    """The conversation's latest ticket, or None."""
    row = session.execute(
        select(Handoff).where(Handoff.conversation_id == conversation_id).order_by(Handoff.id.desc()).limit(1)
    ).scalar_one_or_none()
    return _ticket(session, row) if row is not None else None


def open_tickets(session: Session) -> list[Ticket]:
    """Every ticket not yet closed or abandoned, oldest first."""
    rows = session.execute(
        select(Handoff).where(Handoff.status.in_(routing.OPEN)).order_by(Handoff.id)
    ).scalars()
    return [_ticket(session, row) for row in rows]


def _facts(row: Handoff | Ticket) -> routing.TicketFacts:
    """Routing's view of a ticket row (or of a :class:`Ticket` built from one)."""
    return routing.TicketFacts(
        ticket_id=row.id, channel=row.channel, kind=row.kind, tier=row.tier, status=row.status,
        branch_id=row.branch_id, product=row.product, language=row.language,
        waiting_since=row.waiting_since or row.created_at, claim_deadline=row.claim_deadline,
        claimed_by=row.claimed_by,
    )


def open_facts(session: Session, statuses: frozenset[str] = routing.OPEN) -> list[routing.TicketFacts]:
    """What routing needs of every open ticket (or those in ``statuses``), without customer or
    offer lookups: the sweeper and ``claim_next`` run this often."""
    rows = session.execute(
        select(Handoff).where(Handoff.status.in_(statuses)).order_by(Handoff.id)
    ).scalars()
    return [_facts(row) for row in rows]


def events_of(session: Session, ticket_id: int) -> list[TicketEvent]:
    """A ticket's history, oldest first."""
    rows = session.execute(
        select(HandoffEvent).where(HandoffEvent.handoff_id == ticket_id).order_by(HandoffEvent.id)
    ).scalars()
    return [_event(row) for row in rows]


def _event(row: HandoffEvent) -> TicketEvent:
    return TicketEvent(
        id=row.id, handoff_id=row.handoff_id, from_status=row.from_status, to_status=row.to_status,
        tier=row.tier, actor=row.actor, reason=row.reason, created_at=row.created_at,
    )


def events_after(session: Session, after_id: int, limit: int = 500) -> list[TicketEvent]:
    """Events with an id above ``after_id`` (the feed tails this)."""
    rows = session.execute(
        select(HandoffEvent).where(HandoffEvent.id > after_id).order_by(HandoffEvent.id).limit(limit)
    ).scalars()
    return [_event(row) for row in rows]


def last_event_id(session: Session) -> int:
    """The highest event id so far (0 when none)."""
    return session.execute(select(func.max(HandoffEvent.id))).scalar() or 0


# ------------------------------------------------------------------- writing
TRANSFER_MODES = {"refer": "blind transfer (SIP REFER)", "bridge": "bridged transfer"}
TRANSFER_STATUSES = ("accepted", "bridged", "failed")
"""``accepted``: the customer's side followed the REFER; ``bridged``: the bot joined customer and
agent; ``failed``: the agent could not be reached."""


def record_transfer(
    session: Session, ticket_id: int, *, mode: str, target: str, status: str, detail: str,
    at: datetime, callback_promised: bool, policy: sla.SlaPolicy,
) -> bool:
    """Writes how the phone call was put through to the agent onto the ticket, and moves the
    ticket on accordingly. False if there is no such ticket.

    - A completed transfer (``accepted`` or ``bridged``) connects the ticket: the agent is the
      transfer target, so nobody can claim it on the console any more and the SLA sweeper
      leaves it alone.
    - A failed one follows what the customer was told: a promised callback makes the ticket a
      callback task (as when the SLA runs out); a customer who was told nothing (they hung up
      first) abandoned it.
    """
    if mode not in TRANSFER_MODES:
        raise ValueError(f"transfer mode must be one of {', '.join(TRANSFER_MODES)}, got {mode!r}")
    if status not in TRANSFER_STATUSES:
        raise ValueError(f"transfer status must be one of {', '.join(TRANSFER_STATUSES)}, got {status!r}")
    row = _locked(session, ticket_id)
    if row is None:
        return False
    row.transfer_mode, row.transfer_target, row.transfer_status = mode, target[:200], status
    row.transferred_at, row.updated_at = at, at
    session.flush()
    reason = f"{TRANSFER_MODES[mode]} to {target}: {status}" + (f" ({detail[:200]})" if detail else "")
    current = row.status
    if status != "failed" and current in routing.OPEN - {"connected"}:
        changed = _change(session, ticket_id, (current,), "connected", "sip", reason, at,
                          connected_at=at, kind="live")
    elif status == "failed" and callback_promised and current in routing.CLAIMABLE:
        changed = _change(
            session, ticket_id, (current,), "rerouted", "sip",
            f"{reason}; the customer was promised a callback", at, kind="callback", tier="branch",
            waiting_since=at, claim_deadline=sla.callback_deadline(at, policy),
            callback_due_at=at + timedelta(minutes=policy.callback_promise_min),
        )
    elif status == "failed" and not callback_promised and row.kind == "live" \
            and current in routing.CLAIMABLE | {"claimed"}:
        changed = _change(session, ticket_id, (current,), "abandoned", "sip",
                          f"{reason}; the customer was gone", at)
    else:
        changed = None
    if changed is None:  # nothing to move (e.g. already closed): the history still says it
        log_event(session, row, row.status, "sip", reason, at)
    return True


def _locked(session: Session, ticket_id: int, *, skip_locked: bool = False) -> Handoff | None:
    """The ticket row, locked for this transaction on PostgreSQL (None: missing or, with
    ``skip_locked``, being changed by someone else right now)."""
    query = select(Handoff).where(Handoff.id == ticket_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=skip_locked)
    return session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def _change(
    session: Session, ticket_id: int, expect: Iterable[str], new_status: str, actor: str,
    reason: str, now: datetime, **values: Any,
) -> Handoff | None:
    """Compare-and-set: moves the ticket to ``new_status`` only if its status is in ``expect``.
    Returns the updated row, or None when someone else changed it first."""
    expect = tuple(expect)
    for current in expect:
        routing.check_transition(current, new_status)
    result = session.execute(
        update(Handoff)
        .where(Handoff.id == ticket_id, Handoff.status.in_(expect))
        .values(status=new_status, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    row = session.get(Handoff, ticket_id, populate_existing=True)
    assert row is not None
    session.add(HandoffEvent(
        handoff_id=row.id, from_status=_previous(session, row.id), to_status=new_status,
        tier=row.tier, actor=actor, reason=reason, created_at=now,
    ))
    session.flush()
    return row


def _previous(session: Session, ticket_id: int) -> str | None:
    return session.execute(
        select(HandoffEvent.to_status).where(HandoffEvent.handoff_id == ticket_id)
        .order_by(HandoffEvent.id.desc()).limit(1)
    ).scalar()


def claim(session: Session, ticket_id: int, agent: AgentAccount, now: datetime) -> Ticket:
    """The agent takes the ticket. Exactly one of several simultaneous claimers wins; the
    others get a 409. An agent may only claim tickets routed to them (403)."""
    row = _locked(session, ticket_id, skip_locked=True)
    if row is None:
        if session.get(Handoff, ticket_id) is None:
            raise TicketError(404, f"no ticket {ticket_id}")
        raise TicketError(409, "another agent is claiming this ticket")
    ticket = _ticket(session, row)
    if ticket.status not in routing.CLAIMABLE:
        raise TicketError(409, f"ticket {ticket_id} is already {ticket.status}")
    if not routing.can_claim(agent.profile(), ticket.facts()):
        raise TicketError(403, f"ticket {ticket_id} is not in your queue")
    changed = _change(
        session, ticket_id, routing.CLAIMABLE, "claimed", f"agent:{agent.id}",
        f"claimed by {agent.display_name}", now, claimed_by=agent.id, claimed_at=now,
    )
    if changed is None:
        raise TicketError(409, f"ticket {ticket_id} was just claimed by another agent")
    return _ticket(session, changed)


def claim_next(session: Session, agent: AgentAccount, now: datetime) -> Ticket | None:
    """The agent takes the most urgent ticket in their queue (None: nothing to take).
    Concurrent callers each get a different ticket.

    On PostgreSQL one ``FOR UPDATE SKIP LOCKED`` query takes the first ticket of the agent's
    queue that nobody else is claiming, so racing agents spread over the queue instead of
    colliding on its head; SQLite tries them in order (its writes are serialised anyway)."""
    queue = [f.ticket_id for f in routing.queue_for(agent.profile(), open_facts(session, routing.CLAIMABLE), now)]
    if session.get_bind().dialect.name == "postgresql":
        for start in range(0, len(queue), 100):
            chunk = queue[start : start + 100]
            free = session.execute(
                select(Handoff.id)
                .where(Handoff.id.in_(chunk), Handoff.status.in_(routing.CLAIMABLE))
                .order_by(func.array_position(postgresql.array(chunk), Handoff.id))
                .limit(1)
                .with_for_update(skip_locked=True)
            ).scalar()
            if free is not None:
                return claim(session, free, agent, now)
        return None
    for ticket_id in queue:
        try:
            return claim(session, ticket_id, agent, now)
        except TicketError as exc:
            if exc.status != 409:
                raise
    return None


def connect(session: Session, ticket_id: int, actor: str, now: datetime) -> bool:
    """The customer and the agent are talking. False if the ticket was not claimed any more."""
    return _change(session, ticket_id, ("claimed",), "connected", actor, "agent connected", now,
                   connected_at=now) is not None


def close(
    session: Session, ticket_id: int, agent: AgentAccount, outcome: str, note: str, now: datetime
) -> Ticket:
    """The agent records how it went; the ticket is done."""
    if outcome not in AGENT_OUTCOMES:
        raise TicketError(400, f"outcome must be one of {', '.join(AGENT_OUTCOMES)}")
    ticket = get_ticket(session, ticket_id)
    if ticket is None:
        raise TicketError(404, f"no ticket {ticket_id}")
    if ticket.claimed_by != agent.id and not agent.is_supervisor:
        raise TicketError(403, f"ticket {ticket_id} is not yours")
    changed = _change(
        session, ticket_id, ("claimed", "connected"), "closed", f"agent:{agent.id}",
        f"closed: {outcome}" + (f" ({note.strip()[:200]})" if note.strip() else ""), now,
        closed_at=now, agent_outcome=outcome, agent_note=note.strip(),
    )
    if changed is None:
        raise TicketError(409, f"ticket {ticket_id} is {ticket.status}, not open with an agent")
    return _ticket(session, changed)


def abandon(session: Session, ticket_id: int, reason: str, now: datetime) -> bool:
    """The customer left before an agent connected (a live ticket only; callback tasks stay).
    False when there was nothing to abandon."""
    row = session.get(Handoff, ticket_id)
    if row is None or row.kind != "live":
        return False
    waiting = tuple(routing.CLAIMABLE | {"claimed"})
    return _change(session, ticket_id, waiting, "abandoned", "customer", reason, now) is not None


def _profiles(session: Session, now: datetime) -> list[routing.AgentProfile]:
    return [account.profile() for account in all_accounts(session, now) if account.works_tickets]


def offer_waiting(session: Session, now: datetime) -> list[int]:
    """Marks queued or rerouted tickets that an online agent can take as offered (and offered
    tickets nobody online can take as queued again); returns the changed ticket ids."""
    agents = _profiles(session, now)
    changed = []
    for ticket in open_facts(session):
        if ticket.status not in routing.CLAIMABLE:
            continue
        count = len(routing.eligible_agents(ticket, agents))
        if count and ticket.status != "offered":
            if _change(session, ticket.ticket_id, (ticket.status,), "offered", "system:router",
                       f"offered to {count} online agent(s)", now):
                changed.append(ticket.ticket_id)
        elif not count and ticket.status == "offered":
            if _change(session, ticket.ticket_id, ("offered",), "queued", "system:router",
                       "no online agent can take it", now):
                changed.append(ticket.ticket_id)
    return changed


def apply_sla(session: Session, now: datetime, policy: sla.SlaPolicy) -> list[tuple[int, sla.SlaStep]]:
    """Re-routes every ticket whose time limit has passed; returns what was done."""
    agents = _profiles(session, now)
    done = []
    for ticket in open_facts(session):
        step = sla.sla_step(ticket, now, policy, branch_staffed=routing.branch_staffed(ticket, agents))
        if step is None:
            continue
        values: dict[str, Any] = {"tier": "pool"}
        if step.action == "to_callback":
            values.update(
                kind="callback", tier="branch", waiting_since=now,
                claim_deadline=sla.callback_deadline(now, policy),
                callback_due_at=now + timedelta(minutes=policy.callback_promise_min),
            )
        elif step.action == "reroute_callback":
            values.update(claim_deadline=sla.callback_deadline(now, policy))
        actor = "system:sla" if step.breach else "system:router"
        changed = session.execute(
            update(Handoff)
            .where(Handoff.id == ticket.ticket_id, Handoff.status == ticket.status,
                   Handoff.tier == ticket.tier, Handoff.kind == ticket.kind)
            .values(status="rerouted", updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount != 1:
            continue  # another process got there first
        row = session.get(Handoff, ticket.ticket_id, populate_existing=True)
        assert row is not None
        log_event(session, row, ticket.status, actor, f"{step.action}: {step.reason}", now)
        done.append((ticket.ticket_id, step))
    return done


# ------------------------------------------------------------------ overview
@dataclass(frozen=True)
class QueueStats:
    """The supervisor's overview."""

    waiting: int
    longest_wait_s: float
    with_agents: int
    agents_online: int
    sla_breaches_today: int


def stats(session: Session, now: datetime, day_start: datetime) -> QueueStats:
    """Queue length, longest wait, agents online and SLA breaches since ``day_start``."""
    tickets = open_facts(session)
    waiting = [t for t in tickets if t.status in routing.CLAIMABLE and t.kind == "live"]
    breaches = session.execute(
        select(func.count(HandoffEvent.id)).where(
            HandoffEvent.actor == "system:sla", HandoffEvent.created_at >= day_start
        )
    ).scalar() or 0
    online = [a for a in all_accounts(session, now) if a.online and a.role == "agent"]
    return QueueStats(
        waiting=len(waiting),
        longest_wait_s=max(((now - t.waiting_since).total_seconds() for t in waiting), default=0.0),
        with_agents=sum(1 for t in tickets if t.status in ("claimed", "connected")),
        agents_online=len(online),
        sla_breaches_today=int(breaches),
    )


"""Who may take which handoff ticket, and in what order: pure rules, no I/O and no clock.

A ticket's life (``TRANSITIONS``)::

    queued    -> offered, rerouted, claimed, abandoned, connected (put through over SIP)
    offered   -> rerouted, claimed, abandoned, queued (no eligible agent is online any more),
                 connected
    rerouted  -> offered, rerouted, claimed, abandoned, connected
    claimed   -> connected, closed, abandoned
    connected -> closed
    closed, abandoned: final

``queued``, ``offered`` and ``rerouted`` tickets are claimable. A ``branch``-tier ticket is
offered to the agents of the branch nearest the customer; a ``pool``-tier ticket to everyone.
Supervisors may claim any claimable ticket and see every ticket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from core.vocabulary import Channel, TicketStatus

CHANNELS = tuple(Channel)  # a live phone call, an in-app chat, or text messages
LIVE_CHANNELS = (Channel.VOICE, Channel.CHAT)
"""Where a customer can wait for an agent now; a text message's ticket is a callback task."""
KINDS = ("live", "callback")  # a customer waiting now, or a callback task for later
TIERS = ("branch", "pool")  # offered to the nearest branch's agents, or to everyone
ROLES = ("agent", "supervisor")
STATUSES = tuple(TicketStatus)
CLAIMABLE = frozenset({TicketStatus.QUEUED, TicketStatus.OFFERED, TicketStatus.REROUTED})
OPEN = CLAIMABLE | {TicketStatus.CLAIMED, TicketStatus.CONNECTED}

TRANSITIONS: Mapping[str, frozenset[str]] = MappingProxyType({
    # connected straight from waiting: the phone call was put through to the agents over SIP
    "queued": frozenset({"offered", "rerouted", "claimed", "abandoned", "connected"}),
    # back to queued when no eligible agent is online any more
    "offered": frozenset({"rerouted", "claimed", "abandoned", "queued", "connected"}),
    "rerouted": frozenset({"offered", "rerouted", "claimed", "abandoned", "connected"}),
    "claimed": frozenset({"connected", "closed", "abandoned"}),
    "connected": frozenset({"closed"}),
    "closed": frozenset(),
    "abandoned": frozenset(),
})


class TransitionError(ValueError):
    """A ticket cannot move from its current status to the one asked for."""


def can_transition(current: str, new: str) -> bool:
    """True when a ticket may go from status ``current`` to ``new`` (False for unknown statuses)."""
    return new in TRANSITIONS.get(current, frozenset())


def check_transition(current: str, new: str) -> None:
    """Raises ``TransitionError`` naming both statuses unless ``current -> new`` is allowed."""
    for status in (current, new):
        if status not in TRANSITIONS:
            raise TransitionError(
                f"cannot move a ticket from {current!r} to {new!r}: unknown status {status!r} "
                f"(known: {', '.join(STATUSES)})"
            )
    if not can_transition(current, new):
        allowed = ", ".join(s for s in STATUSES if s in TRANSITIONS[current])
        raise TransitionError(
            f"cannot move a ticket from {current!r} to {new!r}; "
            f"from {current!r} it may go to: {allowed or 'nothing, it is final'}"
        )


def _require_one_of(field: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(allowed)}, got {value!r}")


def _require_aware(field: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be a timezone-aware datetime (UTC), got naive {value!r}")


def _frozen_names(field: str, value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise TypeError(f"{field} must be a collection of names, not the string {value!r}")
    return frozenset(value)


@dataclass(frozen=True)
class AgentProfile:
    """An agent or supervisor as the routing sees them."""

    agent_id: int
    role: str  # ROLES
    branch_id: str | None  # home branch
    products: frozenset[str]  # products the agent may sell; "*" means every product
    languages: frozenset[str]  # e.g. {"mandarin", "sichuanese"}
    online: bool

    def __post_init__(self) -> None:
        _require_one_of("role", self.role, ROLES)
        object.__setattr__(self, "products", _frozen_names("products", self.products))
        object.__setattr__(self, "languages", _frozen_names("languages", self.languages))

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


@dataclass(frozen=True)
class TicketFacts:
    """What the routing needs to know about one handoff ticket."""

    ticket_id: int
    channel: str  # CHANNELS
    kind: str  # KINDS
    tier: str  # TIERS
    status: str  # STATUSES
    branch_id: str | None  # the branch nearest the customer's region (None: region unknown)
    product: str | None
    language: str  # "mandarin" by default
    waiting_since: datetime  # entered the queue (live) or became a callback task (callback)
    claim_deadline: datetime | None  # callback tasks: claim by then or it is re-routed
    claimed_by: int | None

    def __post_init__(self) -> None:
        _require_one_of("channel", self.channel, CHANNELS)
        _require_one_of("kind", self.kind, KINDS)
        _require_one_of("tier", self.tier, TIERS)
        _require_one_of("status", self.status, STATUSES)
        _require_aware("waiting_since", self.waiting_since)
        if self.kind == "live" and self.channel not in LIVE_CHANNELS:
            raise ValueError(f"a {self.channel} ticket is a callback task, never live")
        if self.claim_deadline is not None:
            _require_aware("claim_deadline", self.claim_deadline)


def has_skills(agent: AgentProfile, ticket: TicketFacts) -> bool:
    """True when the agent sells the ticket's product (or every product) and speaks its language."""
    sells = ticket.product is None or "*" in agent.products or ticket.product in agent.products
    return sells and ticket.language in agent.languages


def can_claim(agent: AgentProfile, ticket: TicketFacts) -> bool:
    """True when the agent may claim the ticket now. Online status does not matter here.

    Supervisors may claim any claimable ticket. Agents need the skills, and for a
    branch-tier ticket of a known branch, to belong to that branch.
    """
    if ticket.status not in CLAIMABLE:
        return False
    if agent.is_supervisor:
        return True
    in_reach = (
        ticket.tier == "pool" or ticket.branch_id is None or agent.branch_id == ticket.branch_id
    )
    return in_reach and has_skills(agent, ticket)


def can_view(agent: AgentProfile, ticket: TicketFacts) -> bool:
    """Supervisors see every ticket; agents see the tickets they claimed or can claim."""
    return agent.is_supervisor or ticket.claimed_by == agent.agent_id or can_claim(agent, ticket)


_LIVE_VOICE, _LIVE_CHAT, _CALLBACK = 0, 1, 2
_NO_DEADLINE = timedelta.max


def priority_key(ticket: TicketFacts, now: datetime) -> tuple[int, timedelta, timedelta, int]:
    """Sort key, smaller first.

    Live voice calls, then live chats, then callback tasks. Within live tickets the longest
    waiting first; within callbacks the earliest claim deadline first (tasks without one
    last), then the longest waiting. The ticket_id keeps the order stable.
    """
    _require_aware("now", now)
    if ticket.kind == "callback":
        rank = _CALLBACK
        due_in = _NO_DEADLINE if ticket.claim_deadline is None else ticket.claim_deadline - now
    else:
        rank = _LIVE_VOICE if ticket.channel == "voice" else _LIVE_CHAT
        due_in = _NO_DEADLINE
    return rank, due_in, -(now - ticket.waiting_since), ticket.ticket_id


def queue_for(
    agent: AgentProfile, tickets: Iterable[TicketFacts], now: datetime
) -> list[TicketFacts]:
    """The tickets this agent can claim, in priority order."""
    return sorted((t for t in tickets if can_claim(agent, t)), key=lambda t: priority_key(t, now))


def eligible_agents(ticket: TicketFacts, agents: Iterable[AgentProfile]) -> list[AgentProfile]:
    """Online agents who can claim the ticket, by agent_id. Supervisors are not capacity."""
    return sorted(
        (a for a in agents if a.online and a.role == "agent" and can_claim(a, ticket)),
        key=lambda a: a.agent_id,
    )


def branch_staffed(ticket: TicketFacts, agents: Iterable[AgentProfile]) -> bool:
    """True when an online agent of the ticket's branch has the skills for it.

    False when the ticket has no branch (region unknown). Supervisors do not count.
    """
    if ticket.branch_id is None:
        return False
    return any(
        a.online and a.role == "agent" and a.branch_id == ticket.branch_id and has_skills(a, ticket)
        for a in agents
    )

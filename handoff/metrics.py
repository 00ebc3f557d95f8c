"""The agents' queue as Prometheus sees it, read from the database at each scrape.

The queue lives only in the database (any number of processes share it), so its gauges are
not kept in memory: :class:`QueueCollector` counts the waiting tickets, the agents online and
the SLA breaches when Prometheus asks. Register it in a registry of the process that serves
the queue (the web server); the SLA rules it applies are the pure ones of :mod:`handoff.sla`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import product

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.clock import utcnow
from handoff import routing, sla, tickets
from handoff.agents import all_accounts
from persistence.engine import session_scope
from persistence.schema import HandoffEvent

log = logging.getLogger(__name__)

SLA_ACTOR = "system:sla"
"""Who the ticket history names for a step taken because a time limit was missed."""


@dataclass(frozen=True)
class QueueSnapshot:
    """What the queue's metrics say, read in one transaction (pure data, easy to test)."""

    waiting: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """Claimable tickets by (channel, kind, tier)."""
    oldest_wait_s: dict[tuple[str, str], float] = field(default_factory=dict)
    """The longest wait of a claimable ticket, by (channel, kind)."""
    overdue: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Claimable tickets past an SLA limit now (the sweeper has not moved them yet)."""
    with_agents: int = 0
    agents_online: Counter[str] = field(default_factory=Counter)
    """Online accounts that work tickets, by role."""
    sla_breaches: dict[str, int] = field(default_factory=dict)
    """Steps ever taken for a missed limit, by SLA action (the durable ticket history)."""


def snapshot(session: Session, now: datetime, policy: sla.SlaPolicy) -> QueueSnapshot:
    """Reads the queue's numbers (see :class:`QueueSnapshot`)."""
    facts = tickets.open_facts(session)
    accounts = [a for a in all_accounts(session, now) if a.works_tickets]
    profiles = [a.profile() for a in accounts]
    shot = QueueSnapshot(
        with_agents=sum(1 for t in facts if t.status not in routing.CLAIMABLE),
        agents_online=Counter(str(p.role) for p in profiles if p.online),
        sla_breaches=_breaches(session),
    )
    for ticket in facts:
        if ticket.status not in routing.CLAIMABLE:
            continue
        shot.waiting[(ticket.channel, ticket.kind, ticket.tier)] += 1
        key = (ticket.channel, ticket.kind)
        waited = max(0.0, (now - ticket.waiting_since).total_seconds())
        shot.oldest_wait_s[key] = max(shot.oldest_wait_s.get(key, 0.0), waited)
        step = sla.sla_step(ticket, now, policy,
                            branch_staffed=routing.branch_staffed(ticket, profiles))
        if step is not None and step.breach:
            shot.overdue[key] += 1
    return shot


def _breaches(session: Session) -> dict[str, int]:
    columns = [func.sum(case((HandoffEvent.reason.like(f"{action}:%"), 1), else_=0))
               for action in sla.ACTIONS]
    row = session.execute(select(*columns).where(HandoffEvent.actor == SLA_ACTOR)).one()
    return {action: int(count or 0) for action, count in zip(sla.ACTIONS, row, strict=True)}


class QueueCollector(Collector):
    """Yields the queue's metrics at scrape time; ``engine`` is asked for at each scrape (the
    web app opens its database after the routes are set up). A failed read is logged and
    reported as ``offercall_handoff_queue_up 0``."""

    def __init__(
        self, engine: Callable[[], Engine], policy: sla.SlaPolicy,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._policy = policy
        self._clock = clock

    def read(self) -> QueueSnapshot:
        with session_scope(self._engine()) as session:
            return snapshot(session, self._clock(), self._policy)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("offercall_handoff_queue_up",
                               "1 when the queue's metrics could be read from the database")
        try:
            shot = self.read()
        except Exception:
            log.exception("handoff.metrics.read_failed")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families(shot)


def families(shot: QueueSnapshot) -> Iterator[Metric]:
    """The metric families of a snapshot; every channel, kind and tier is present (0 when
    empty), so a gauge falls back to 0 instead of vanishing."""
    waiting = GaugeMetricFamily(
        "offercall_handoff_queue_length",
        "Tickets waiting to be claimed, by channel, kind (live, callback) and tier (branch, pool)",
        labels=["channel", "kind", "tier"])
    for channel, kind, tier in product(routing.CHANNELS, routing.KINDS, routing.TIERS):
        waiting.add_metric([str(channel), kind, tier], shot.waiting[(channel, kind, tier)])
    oldest = GaugeMetricFamily(
        "offercall_handoff_oldest_wait_seconds",
        "How long the longest-waiting claimable ticket has waited, by channel and kind",
        labels=["channel", "kind"])
    overdue = GaugeMetricFamily(
        "offercall_handoff_sla_overdue",
        "Claimable tickets past an SLA time limit now (the sweeper has not moved them yet)",
        labels=["channel", "kind"])
    for channel, kind in product(routing.CHANNELS, routing.KINDS):
        oldest.add_metric([str(channel), kind], shot.oldest_wait_s.get((channel, kind), 0.0))
        overdue.add_metric([str(channel), kind], shot.overdue[(channel, kind)])
    with_agents = GaugeMetricFamily(
        "offercall_handoff_with_agents", "Tickets claimed by or connected to an agent")
    with_agents.add_metric([], shot.with_agents)
    online = GaugeMetricFamily(
        "offercall_agents_online", "Accounts that work tickets with the console open, by role",
        labels=["role"])
    for role in routing.ROLES:
        online.add_metric([role], shot.agents_online[role])
    breaches = CounterMetricFamily(
        "offercall_handoff_sla_breaches",
        "SLA time limits missed, by the step taken (ticket history, all processes)",
        labels=["action"])
    for action in sla.ACTIONS:
        breaches.add_metric([action], shot.sla_breaches.get(action, 0))
    yield from (waiting, oldest, overdue, with_agents, online, breaches)

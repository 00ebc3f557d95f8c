"""The process's handoff service: database work off the event loop, the feed that pushes
changes to websockets, and the SLA sweeper.

Each server process runs one. State lives only in the database, so any number of them can
share a PostgreSQL: the sweeper's changes are compare-and-sets, harmless when two processes
race, and the feed picks up rows whichever process wrote them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.clock import utcnow
from handoff import messages, sla, tickets
from handoff.feed import Feed
from persistence.engine import session_scope

log = logging.getLogger(__name__)
T = TypeVar("T")

AGENT_JOINED = "客户经理{name}已接入，接下来由他为您服务。"
AGENT_LEFT = "本次人工服务已结束。如果还有问题，可以继续问我。"


class HandoffService:
    """One per process; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        policy: sla.SlaPolicy | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        sweep_interval_s: float = 1.0,
        feed_interval_s: float = 0.25,
        feed_safety_interval_s: float = 3.0,
    ) -> None:
        self.engine = engine
        self.policy = policy or sla.SlaPolicy()
        self.clock = clock
        # on PostgreSQL the feed wakes on NOTIFY and polls only every feed_safety_interval_s
        self.feed = Feed(engine, feed_interval_s, safety_interval_s=feed_safety_interval_s)
        self._sweep_interval_s = sweep_interval_s
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, *, sweep: bool = True) -> None:
        """Starts the feed and (unless told not to) the SLA sweeper."""
        await self.feed.start()
        if sweep:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="handoff-sla")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.feed.stop()

    async def run(self, work: Callable[[Session, datetime], T]) -> T:
        """Runs ``work(session, now)`` in one committed transaction off the event loop, then
        pushes whatever it wrote. It returns only after the commit."""

        def transaction() -> T:
            with session_scope(self.engine) as session:
                return work(session, self.clock())

        result = await asyncio.to_thread(transaction)
        self.feed.kick()
        return result

    async def read(self, work: Callable[[Session, datetime], T]) -> T:
        """Runs ``work(session, now)`` in a transaction of its own off the event loop, for
        reads: unlike :meth:`run`, it does not wake the feed."""
        now = self.clock()

        def transaction() -> T:
            with session_scope(self.engine) as session:
                return work(session, now)

        return await asyncio.to_thread(transaction)

    async def sweep(self) -> list[tuple[int, sla.SlaStep]]:
        """One pass: offer waiting tickets to online agents, apply the SLA limits, and tell chat
        customers whose wait became a callback promise."""

        def work(session: Session, now: datetime) -> list[tuple[int, sla.SlaStep]]:
            tickets.offer_waiting(session, now)
            done = tickets.apply_sla(session, now, self.policy)
            for ticket_id, step in done:
                ticket = tickets.get_ticket(session, ticket_id)
                if step.action == "to_callback" and ticket is not None and ticket.channel == "chat":
                    messages.post(
                        session, conversation_id=ticket.conversation_id, sender="system",
                        text=sla.callback_promise(self.policy), handoff_id=ticket_id, now=now,
                        data={"event": "callback_promised"},
                    )
            return done

        done = await self.run(work)
        for ticket_id, step in done:
            log.info("handoff.sla.step", extra={"handoff_id": ticket_id, "action": step.action})
        return done

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # keep sweeping; a bad pass must not stop re-routing for good
                log.exception("handoff.sla.sweep_failed")
            await asyncio.sleep(self._sweep_interval_s)

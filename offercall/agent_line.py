"""A phone call's link to its handoff ticket (``voice.agent_bridge.AgentLine`` on the queue).

While the customer waits, the ticket's events decide what happens: a claim bridges the
agent in, a callback promise ends the wait, a close ends the call. Once bridged, what the
customer says goes to the message log (the agent's console shows it live) and what the
agent types comes back to be spoken. A call starts with the state in the database, so a
claim that landed before the line opened is not missed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy.orm import Session

from handoff import agents, messages, sla, tickets
from handoff.feed import Item
from handoff.service import HandoffService
from voice.events import AgentDone, AgentJoined, AgentSaid, CallbackPromised, LineEvent

CUSTOMER_HUNG_UP = "客户已挂断电话。"


class HandoffLine:
    """Implements ``voice.agent_bridge.AgentLine`` on the handoff queue. It lives in the
    composition root because it joins two packages that know nothing of each other."""

    def __init__(self, service: HandoffService) -> None:
        self.service = service

    async def events(self, handoff_id: int) -> AsyncIterator[LineEvent]:
        """What the agent side does, in order, until the call should end."""

        def wants(item: Item) -> bool:
            if isinstance(item, tickets.TicketEvent):
                return item.handoff_id == handoff_id
            return item.handoff_id == handoff_id and item.sender == "agent"

        # Listen before reading the ticket: a claim that lands in between is then either in
        # the state read or in the subscription, never lost.
        subscription = self.service.feed.subscribe(wants)
        try:
            ticket = await self._ticket(handoff_id)
            if ticket is None:
                yield AgentDone(f"no ticket {handoff_id}")
                return
            joined = False
            spoken: set[int] = set()
            current: tickets.Ticket | None = ticket
            while True:
                if current is None or current.status in ("closed", "abandoned"):
                    yield AgentDone("the ticket was closed")
                    return
                if current.kind == "callback":
                    yield CallbackPromised(sla.callback_promise(self.service.policy))
                    return
                if not joined and current.status in ("claimed", "connected"):
                    joined = True
                    yield AgentJoined(await self._agent_name(current.claimed_by))
                item = await subscription.get()
                if isinstance(item, messages.LoggedMessage):
                    if item.id not in spoken:
                        spoken.add(item.id)
                        yield AgentSaid(item.text)
                    continue
                current = await self._ticket(handoff_id)
        finally:
            self.service.feed.unsubscribe(subscription)

    async def customer_said(self, handoff_id: int, text: str) -> None:
        """Puts the customer's words on the agent's console."""
        ticket = await self._ticket(handoff_id)
        if ticket is None:
            return
        await self.service.run(lambda session, now: messages.post(
            session, conversation_id=ticket.conversation_id, sender="customer", text=text,
            handoff_id=handoff_id, now=now,
        ))

    async def connected(self, handoff_id: int) -> None:
        """The audio is bridged to the agent."""
        await self.service.run(
            lambda session, now: tickets.connect(session, handoff_id, "voice:bridge", now))

    async def customer_left(self, handoff_id: int, reason: str) -> None:
        """The customer hung up: a wait for an agent ends as abandoned; an agent who is already
        talking to them is told on the console."""

        def work(session: Session, now: datetime) -> None:
            ticket = tickets.get_ticket(session, handoff_id)
            if ticket is None:
                return
            if ticket.status == "connected":
                messages.post(session, conversation_id=ticket.conversation_id, sender="system",
                              text=CUSTOMER_HUNG_UP, handoff_id=handoff_id, now=now,
                              data={"event": "customer_left"})
            else:
                tickets.abandon(session, handoff_id, reason, now)

        await self.service.run(work)

    async def _ticket(self, handoff_id: int) -> tickets.Ticket | None:
        return await self.service.run(lambda session, _: tickets.get_ticket(session, handoff_id))

    async def _agent_name(self, agent_id: int | None) -> str:
        def name(session: Session, now: datetime) -> str:
            account = agents.get_account(session, agent_id, now) if agent_id else None
            return account.display_name if account else ""

        return await self.service.run(name)

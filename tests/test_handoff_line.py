"""A phone call's link to its ticket: what the waiting call learns from the queue."""

from __future__ import annotations

import asyncio

import pytest

from handoff.service import HandoffService
from handoff.sla import SlaPolicy
from offercall.agent_line import HandoffLine
from persistence.engine import session_scope
from tests.conftest import QUEUE_NOW
from tests.test_tickets import account, enqueue
from voice.events import AgentJoined, AgentSaid

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


class ClaimWhileReading(HandoffLine):
    """A line whose first look at the ticket is overtaken by an agent's claim: the claim is
    committed and published by the feed before the line has the (stale) ticket in hand."""

    def __init__(self, service: HandoffService, claim) -> None:
        super().__init__(service)
        self._claim = claim

    async def _ticket(self, handoff_id: int):
        stale = await super()._ticket(handoff_id)
        if self._claim is not None:
            claim, self._claim = self._claim, None
            await claim()
        return stale


async def test_a_claim_that_lands_while_the_line_opens_still_bridges_the_agent(staffed):
    from handoff import messages, tickets

    ticket_id = enqueue(staffed, "C0001")
    service = HandoffService(staffed, SlaPolicy(), feed_interval_s=0.05)
    await service.start(sweep=False)
    try:
        jt = account(staffed, "jt")

        async def claim():
            await service.run(lambda session, now: tickets.claim(session, ticket_id, jt, now))
            await asyncio.sleep(0.5)  # ten feed ticks: the claim's event is published

        events = ClaimWhileReading(service, claim).events(ticket_id)
        assert isinstance(await asyncio.wait_for(anext(events), 5), AgentJoined)
        with session_scope(staffed) as session:
            conversation = tickets.get_ticket(session, ticket_id).conversation_id
            messages.post(session, conversation_id=conversation, sender="agent", text="您好",
                          handoff_id=ticket_id, agent_id=jt.id, now=QUEUE_NOW)
        service.feed.kick()
        said = await asyncio.wait_for(anext(events), 5)
        assert isinstance(said, AgentSaid) and said.text == "您好"
        await events.aclose()
    finally:
        await service.stop()

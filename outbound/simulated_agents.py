"""Simulated call-center agents for the demo campaign: they keep their presence online, take
the next ticket from the queue, greet the customer (the bot's voice speaks their words on
the call), and close the ticket with an outcome, as a person at the console would."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

from handoff import agents, messages, tickets
from handoff.service import HandoffService

log = logging.getLogger(__name__)

GREETING = "您好，我是客户经理，已经看到您的额度信息了，我现在帮您在手机银行上提交申请。"


@dataclass(frozen=True)
class AgentBehaviour:
    """How long a simulated agent takes (in seconds of wall time)."""

    pickup_s: float = 1.0
    talk_s: float = 8.0
    applied_share: float = 0.75


def _outcome(conversation_id: str, share: float) -> str:
    """A stable pseudo-random outcome per conversation: mostly applied, some follow-ups."""
    point = int(hashlib.sha256(conversation_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "applied" if point < share else "follow_up"


async def simulated_agent(service: HandoffService, username: str, behaviour: AgentBehaviour,
                          stop: asyncio.Event) -> int:
    """Works the queue as ``username`` until ``stop`` is set; returns how many tickets it closed."""
    closed = 0
    while not stop.is_set():
        account = await service.run(lambda s, now: next(
            (a for a in agents.all_accounts(s, now) if a.username == username), None))
        if account is None:
            raise ValueError(f"no agent account {username!r} (run `offercall staff`)")
        await service.run(lambda s, now: agents.touch(s, account.id, now))
        ticket = await service.run(lambda s, now: tickets.claim_next(s, account, now))
        if ticket is None:
            try:
                await asyncio.wait_for(stop.wait(), behaviour.pickup_s)
            except asyncio.TimeoutError:
                pass
            continue
        await asyncio.sleep(behaviour.pickup_s)
        await service.run(lambda s, now: messages.post(
            s, conversation_id=ticket.conversation_id, sender="agent", text=GREETING,
            handoff_id=ticket.id, agent_id=account.id, now=now))
        await asyncio.sleep(behaviour.talk_s)
        outcome = _outcome(ticket.conversation_id, behaviour.applied_share)
        await service.run(lambda s, now: tickets.close(
            s, ticket.id, account, outcome, "demo agent", now))
        closed += 1
    await service.run(lambda s, now: agents.touch(s, account.id, None) if account else None)
    return closed

"""Wiring for calls over SIP: a transport to a customer's phone that speaks with the bot's
voice, briefs the agent from the ticket, and writes the transfer onto the ticket."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.engine import Engine

from handoff import tickets
from handoff.sla import SlaPolicy
from offercall.voice_calls import VoiceRuntime
from persistence.engine import session_scope
from voice.audio import MULAW_8K
from voice.transports.sip import SipStack, SipTransport, TransferRecord, TrunkConfig
from zhnorm import say_amount

REASONS = {
    "accepted_offer": "客户有意向办理",
    "customer_requested": "客户要求人工服务",
    "not_understood": "机器人未能解答客户的问题",
}


class UnknownCustomer(LookupError):
    """The customer to dial is not in the database (or has no phone number)."""


def customer_phone(engine: Engine, customer_id: str) -> str:
    """The number to dial for ``customer_id``."""
    from persistence.schema import Customer

    with session_scope(engine) as session:
        customer = session.get(Customer, customer_id)
        if customer is None or not customer.phone:
            raise UnknownCustomer(f"no phone number for customer {customer_id!r}")
        return str(customer.phone)


def briefing_sentence(ticket: tickets.Ticket | None, reason: str) -> str:
    """What the bot tells the agent before joining the customer: who, which offer, why (one
    sentence; the name is masked, the rest is on the ticket)."""
    why = REASONS.get(ticket.reason if ticket else reason, REASONS["customer_requested"])
    if ticket is None:
        return f"您好，有一位客户转接过来，{why}，现在为您接通。"
    who = ticket.masked_name or "一位客户"
    offer = f"，预授信{ticket.product}{say_amount(ticket.amount_yuan)}" if ticket.product and ticket.amount_yuan else ""
    return f"您好，转接客户{who}{offer}，{why}，工单号{ticket.id}，现在为您接通。"


class SipCalls:
    """Makes :class:`SipTransport` s for customers, wired to the database and the bot's voice."""

    def __init__(self, stack: SipStack, runtime: VoiceRuntime, engine: Engine,
                 trunk: TrunkConfig | None = None) -> None:
        self.stack = stack
        self.runtime = runtime
        self.engine = engine
        self.trunk = trunk

    def transport(self, number: str, call_id: str) -> SipTransport:
        """A transport that dials ``number`` (a phone number, or a sip: URI)."""
        return SipTransport(
            self.stack, number, trunk=self.trunk, call_id=call_id,
            synthesize=self._synthesize, briefing=self._briefing, on_transfer=self._record,
        )

    async def _synthesize(self, text: str) -> bytes:
        return await self.runtime.speaker.speak(text, MULAW_8K)

    async def _briefing(self, handoff_id: int | None, reason: str) -> str:
        if handoff_id is None:
            return briefing_sentence(None, reason)

        def read() -> tickets.Ticket | None:
            with session_scope(self.engine) as session:
                return tickets.get_ticket(session, handoff_id)

        return briefing_sentence(await asyncio.to_thread(read), reason)

    async def _record(self, record: TransferRecord) -> None:
        if record.handoff_id is None:
            return
        handoff_id = record.handoff_id
        at: datetime = record.ended_at or record.started_at

        policy = SlaPolicy.from_settings(self.runtime.settings)

        def write() -> None:
            with session_scope(self.engine) as session:
                tickets.record_transfer(
                    session, handoff_id, mode=record.mode, target=record.target,
                    status=record.status, detail=record.detail, at=at,
                    callback_promised=record.callback_promised, policy=policy,
                )

        await asyncio.to_thread(write)

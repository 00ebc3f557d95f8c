"""The bot as the chat and voice channels use it, with a safety net under the custom actions.

Rasa decides; the action server carries the decision out (writes the ticket, the opt-out, the
callback) and says so. When the action server is down or broken, Rasa still decides but the
action's work is lost and the customer would hear nothing. :class:`FailSafeBot` notices
(:class:`bot.client.ActionFailed`) and, for the requests that must never be lost, does the
durable part itself and tells the customer:

- a handoff (``action_create_handoff``): a ticket in the agents' queue, and a transfer;
- an opt-out (``action_opt_out``): the do-not-contact entry, at once, and a goodbye;
- a callback (``action_book_callback`` or the callback form): booked at the time
  the customer said, or, when that cannot be read, a callback task for a human.

Any other failed turn is an apology (``RasaUnavailable``), as when Rasa itself is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.actions import texts
from bot.client import ActionFailed, BotTurn, Directive
from core.clock import utcnow
from core.vocabulary import ConversationOutcome
from persistence import handoffs, store
from persistence.engine import session_scope
from persistence.schema import Conversation
from zhnorm import parse_callback_time, say_time

log = logging.getLogger(__name__)

REQUESTS = {
    "action_create_handoff": "handoff",
    "action_opt_out": "opt_out",
    "action_book_callback": "callback",
    "callback_form": "callback",  # the form's validation runs on the action server
}
"""The custom actions that carry out a customer's request, and which request."""

SORRY = "抱歉，系统刚才出了点问题。"
CALLBACK_TASK = "我们的客户经理会再联系您，先不打扰您了，再见！"
OPT_OUT_TASK = "您的要求已经记下，会有专人为您处理。打扰您了，再见！"
REMEMBERED = 10_000
"""Conversations whose customer this process remembers from their opening."""


def _hangup(outcome: ConversationOutcome, **extra: str) -> Directive:
    return Directive("hangup", {"outcome": str(outcome), **extra})


def request_of(actions: list[str]) -> str | None:
    """The request a turn's failed actions were carrying out (None: nothing to keep)."""
    return next((REQUESTS[name] for name in actions if name in REQUESTS), None)


@dataclass(frozen=True)
class FailSafeConfig:
    """What the safety net needs to know of the deployment."""

    bank: str
    hotline: str
    timezone: str
    callback_claim_s: float
    callback_promise_min: int


@dataclass(frozen=True)
class _Party:
    customer_id: str | None
    channel: str


class FailSafeBot:
    """Wraps a :class:`bot.client.RasaClient` (``start``, ``send``, ``parse``) for a channel."""

    def __init__(
        self, client: Any, engine: Engine, config: FailSafeConfig,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.engine = engine
        self.config = config
        self.clock = clock
        self._parties: OrderedDict[str, _Party] = OrderedDict()

    async def start(
        self, conversation_id: str, customer_id: str, channel: str,
        extra: dict[str, Any] | None = None,
    ) -> BotTurn:
        """Opens the conversation (see ``RasaClient.start``)."""
        self._parties[conversation_id] = _Party(customer_id, channel)
        while len(self._parties) > REMEMBERED:
            self._parties.popitem(last=False)
        return await self.client.start(conversation_id, customer_id, channel, extra)

    async def parse(self, text: str) -> tuple[str | None, float | None]:
        return await self.client.parse(text)

    async def send(
        self, conversation_id: str, text: str, metadata: dict[str, Any] | None = None
    ) -> BotTurn:
        """One customer turn; a request whose action failed is kept here (module docstring)."""
        try:
            return await self.client.send(conversation_id, text, metadata)
        except ActionFailed as failure:
            request = request_of(failure.actions)
            if request is None:
                raise
            log.error("bot.failsafe.request_kept",
                      extra={"conversation_id": conversation_id, "request": request,
                             "actions": failure.actions})
            return await asyncio.to_thread(self._keep, request, conversation_id, text)

    # ----------------------------------------------------------- the requests
    def _keep(self, request: str, conversation_id: str, text: str) -> BotTurn:
        with session_scope(self.engine) as session:
            party = self._party(session, conversation_id)
            if request == "opt_out":
                return self._opt_out(session, party, conversation_id, text)
            if request == "handoff":
                return self._handoff(session, party, conversation_id, text)
            return self._callback(session, party, conversation_id, text)

    def _party(self, session: Session, conversation_id: str) -> _Party:
        row = session.get(Conversation, conversation_id)
        if row is not None and row.customer_id:
            return _Party(row.customer_id, row.channel)
        return self._parties.get(conversation_id, _Party(None, "chat"))

    def _opt_out(self, session: Session, party: _Party, conversation_id: str, text: str) -> BotTurn:
        if party.customer_id is None:  # no key to write down: a person must do it
            self._ticket(session, party, conversation_id, text, self._callback_task(),
                         reason="opt_out_request")
            store.record_outcome(session, conversation_id, ConversationOutcome.OPT_OUT, text)
            return BotTurn([SORRY + OPT_OUT_TASK], [_hangup(ConversationOutcome.OPT_OUT)])
        found = store.get_customer_offer(session, party.customer_id)
        store.add_do_not_contact(
            session, customer_id=party.customer_id, phone=found.phone if found else None,
            utterance=text, conversation_id=conversation_id, source="failsafe",
        )
        store.record_outcome(session, conversation_id, ConversationOutcome.OPT_OUT, text)
        return BotTurn([texts.opt_out_confirmation()], [_hangup(ConversationOutcome.OPT_OUT)])

    def _handoff(self, session: Session, party: _Party, conversation_id: str, text: str) -> BotTurn:
        handoff_id = self._ticket(session, party, conversation_id, text)
        store.record_outcome(session, conversation_id, ConversationOutcome.TRANSFERRED,
                             "customer_requested")
        return BotTurn(
            [SORRY + texts.transfer_notice(party.channel)],
            [Directive("transfer", {"handoff_id": handoff_id, "reason": "customer_requested"})],
        )

    def _callback(self, session: Session, party: _Party, conversation_id: str, text: str) -> BotTurn:
        local_now = self.clock().astimezone(ZoneInfo(self.config.timezone))
        due_at = parse_callback_time(text, local_now)
        if due_at is not None:
            store.book_callback(session, conversation_id=conversation_id,
                                customer_id=party.customer_id, due_at=due_at, requested_text=text)
            store.record_outcome(session, conversation_id, ConversationOutcome.CALLBACK, text)
            return BotTurn(
                [texts.callback_confirmation(say_time(due_at, local_now))],
                [_hangup(ConversationOutcome.CALLBACK, callback_at=due_at.isoformat())],
            )
        self._ticket(session, party, conversation_id, text, self._callback_task())
        store.record_outcome(session, conversation_id, ConversationOutcome.CALLBACK, text)
        return BotTurn([SORRY + CALLBACK_TASK], [_hangup(ConversationOutcome.CALLBACK)])

    def _callback_task(self) -> tuple[datetime, datetime]:
        """When a callback task promises to call, and by when an agent must claim it."""
        now = self.clock()
        return (now + timedelta(minutes=self.config.callback_promise_min),
                now + timedelta(seconds=self.config.callback_claim_s))

    def _ticket(
        self, session: Session, party: _Party, conversation_id: str, text: str,
        callback: tuple[datetime, datetime] | None = None, reason: str = "customer_requested",
    ) -> int:
        found = store.get_customer_offer(session, party.customer_id) if party.customer_id else None
        if party.channel == "sms" and callback is None:
            callback = self._callback_task()  # a customer texting is not on the line
        return handoffs.create_ticket(
            session, conversation_id=conversation_id, customer_id=party.customer_id,
            offer_id=found.offer_id if found else None,
            channel=party.channel if party.channel in ("voice", "chat", "sms") else "chat",
            reason=reason, transcript=[{"speaker": "customer", "text": text}],
            intents=[], now=self.clock(), callback=callback,
        )

"""The SMS channel at work: sending a campaign's message (rate-limited, within the contact
window, never to an opted-out customer) and answering customers' replies.

Every message is written before it is handed to the gateway, so a crash loses none: a
message the gateway could not take stays ``queued`` and :meth:`SmsChannel.resend_queued`
sends it again. A reply is written before anything is done about it. 回复TD退订 puts the
number (and its customer) on the do-not-contact list in that same transaction, and the
customer gets one confirmation. Any other reply goes to the bot, in a conversation of the
``sms`` channel, and the bot's answer goes back by text; once an agent has the conversation
(the bot's handoff makes a callback task), replies go to the agent's view instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.client import BotPort, BotTurn, RasaUnavailable
from core.clock import utcnow
from core.masking import mask_phone
from handoff import messages, routing, tickets
from outbound import sms_messages
from outbound.campaigns import get_campaign
from outbound.sms_gateway import GatewayUnavailable, KannelGateway
from outbound.sms_rules import (
    OPT_OUT_CONFIRMATION,
    TEMPLATES,
    TokenBucket,
    decide_send,
    is_opt_out,
    render,
    reply_parts,
)
from persistence import store
from persistence.engine import in_transaction
from persistence.schema import Customer

log = logging.getLogger(__name__)

BUSY = "【{bank}】抱歉，系统暂时繁忙，请稍后再回复，或致电{hotline}咨询。"
UNKNOWN_SENDER = "【{bank}】您好，未能识别您的身份，如需咨询贷款服务请致电{hotline}。"


@dataclass(frozen=True)
class SendOutcome:
    """What became of one message: ``submitted``, ``queued`` (the gateway was away; it will
    be sent again), ``failed`` (refused), ``wait`` (outside the window, until ``not_before``)
    or ``skip`` (with the reason: opted out, already sent, no such customer)."""

    status: str
    message_id: int | None = None
    reason: str = ""
    not_before: datetime | None = None


@dataclass
class SmsChannel:
    """Sends and receives text messages for one installation through one gateway."""

    engine: Engine
    gateway: KannelGateway
    http: aiohttp.ClientSession
    bank: str
    hotline: str
    link_for: Callable[[str], str]
    """The customer's signed chat link."""
    rate: float
    bot: BotPort | None = None
    clock: Callable[[], datetime] = utcnow
    _bucket: TokenBucket = field(init=False)
    _pace: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self._bucket = TokenBucket(self.rate, burst=max(1.0, self.rate / 10))

    # ------------------------------------------------------------ sending
    async def send_offer(self, campaign_id: str, customer_id: str, *, template: str = "offer",
                         variant: str | None = None) -> SendOutcome:
        """A campaign's message to one of its customers, if the rules allow it now (each
        template at most once a customer)."""
        now = self.clock()

        def prepare(session: Session) -> tuple[SendOutcome | None, str]:
            window = get_campaign(session, campaign_id).config.window()
            customer = session.get(Customer, customer_id)
            if customer is None:
                return SendOutcome("skip", reason="unknown_customer"), ""
            decision = decide_send(
                window, now,
                opted_out=store.is_do_not_contact(session, customer_id=customer_id,
                                                  phone=customer.phone),
                already_sent=sms_messages.already_sent(session, campaign_id, customer_id,
                                                        template))
            if decision.verdict != "send":
                return SendOutcome(decision.verdict, reason=decision.reason,
                                   not_before=decision.not_before), ""
            return None, customer.phone

        refused, phone = await in_transaction(self.engine, prepare)
        if refused is not None:
            return refused
        text = render(TEMPLATES[template], bank=self.bank, link=self.link_for(customer_id))
        return await self.send(phone, text, customer_id=customer_id, campaign_id=campaign_id,
                               template=template, variant=variant)

    async def send(self, phone: str, text: str, *, customer_id: str | None = None,
                   campaign_id: str | None = None, template: str | None = None,
                   variant: str | None = None, conversation_id: str | None = None,
                   transactional: bool = False) -> SendOutcome:
        """Writes the message, then hands it to the gateway at the channel's pace. Marketing
        messages never go to an opted-out number; ``transactional`` ones (a reply the customer
        asked for, the opt-out's confirmation) do."""
        now = self.clock()

        def write(session: Session) -> int | None:
            if not transactional and store.is_do_not_contact(
                    session, customer_id=customer_id, phone=phone):
                return None
            return sms_messages.queue(
                session, phone=phone, text=text, gateway=self.gateway.name, now=now,
                customer_id=customer_id, campaign_id=campaign_id, template=template,
                variant=variant, conversation_id=conversation_id)

        message_id = await in_transaction(self.engine, write)
        if message_id is None:
            return SendOutcome("skip", reason="do_not_contact")
        return await self._submit(message_id, phone, text)

    async def _submit(self, message_id: int, phone: str, text: str) -> SendOutcome:
        async with self._pace:
            wait = self._bucket.wait_s(time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            result = await self.gateway.submit(self.http, message_id, phone, text)
        except GatewayUnavailable as exc:
            log.warning("sms.gateway.away",
                        extra={"message_id": message_id, "phone": mask_phone(phone)})
            await self._write(sms_messages.note_gateway_away, message_id, str(exc))
            return SendOutcome("queued", message_id, reason="gateway_unavailable")
        if not result.accepted:
            log.error("sms.refused", extra={"message_id": message_id, "detail": result.detail})
            await self._write(sms_messages.mark_failed, message_id, result.detail)
            return SendOutcome("failed", message_id, reason=result.detail)
        await self._write(sms_messages.mark_submitted, message_id, result.detail)
        return SendOutcome("submitted", message_id)

    async def _write(self, change: Callable[..., None], message_id: int, detail: str) -> None:
        now = self.clock()

        def run(session: Session) -> None:
            change(session, message_id, detail, now)

        await in_transaction(self.engine, run)

    async def resend_queued(self, older_than_s: float = 30) -> int:
        """Sends again the messages the gateway could not take; returns how many it took."""
        now = self.clock()

        def pending(session: Session) -> list[sms_messages.SmsRecord]:
            return sms_messages.claim_queued(
                session, now - timedelta(seconds=older_than_s), now)

        taken = 0
        for record in await in_transaction(self.engine, pending):
            outcome = await self._submit(record.id, record.phone, record.text)
            if outcome.status == "queued":
                break  # still away: try again later
            taken += outcome.status == "submitted"
        return taken

    # ------------------------------------------------------------ replies
    async def handle_reply(self, phone: str, text: str, gateway_ref: str | None = None) -> str:
        """A customer's reply: what was done with it (``opted_out``, ``bot``, ``agent``,
        ``bot_unavailable``, ``unknown_sender``, or ``duplicate``: the gateway's retry of one
        handled before, by its ``gateway_ref``)."""
        now = self.clock()
        opting_out = is_opt_out(text)

        def record(session: Session) -> tuple[sms_messages.Sender, int | None]:
            sender = sms_messages.sender_of(session, phone, now)
            reply_id = sms_messages.record_reply(
                session, phone=phone, text=text, gateway=self.gateway.name, now=now,
                sender=sender, gateway_ref=gateway_ref)
            if reply_id is None:
                return sender, None
            if opting_out:
                sms_messages.opt_out(session, reply_id, now)
            elif sender.customer_id is None or self.bot is None:
                sms_messages.note(session, reply_id, "unknown_sender", now)
            return sender, reply_id

        try:
            sender, reply_id = await in_transaction(self.engine, record)
        except IntegrityError:  # the same delivery, twice at once: the other one handles it
            reply_id = None
        if reply_id is None:
            log.info("sms.reply.duplicate", extra={"phone": mask_phone(phone)})
            return "duplicate"
        log.info("sms.reply", extra={"phone": mask_phone(phone), "opt_out": opting_out})
        if opting_out:
            await self.send(phone, OPT_OUT_CONFIRMATION.format(bank=self.bank),
                            customer_id=sender.customer_id, transactional=True)
            return "opted_out"
        if sender.customer_id is None or self.bot is None:
            await self.send(phone, UNKNOWN_SENDER.format(bank=self.bank, hotline=self.hotline),
                            transactional=True)
            return "unknown_sender"
        conversation_id = sender.conversation_id or f"sms-{uuid.uuid4().hex}"
        if await self._with_agent(conversation_id, reply_id, text):
            return "agent"
        try:
            turn = await self._ask_bot(conversation_id, sender, text,
                                       fresh=sender.conversation_id is None)
        except RasaUnavailable:
            await self._log(conversation_id, reply_id, text, [], "bot_unavailable")
            await self.send(phone, BUSY.format(bank=self.bank, hotline=self.hotline),
                            customer_id=sender.customer_id, conversation_id=conversation_id,
                            transactional=True)
            return "bot_unavailable"
        await self._log(conversation_id, reply_id, text, turn.texts, "bot")
        for part in reply_parts(turn.texts):
            await self.send(phone, part, customer_id=sender.customer_id,
                            conversation_id=conversation_id, transactional=True)
        return "bot"

    async def _ask_bot(self, conversation_id: str, sender: sms_messages.Sender, text: str,
                       *, fresh: bool) -> BotTurn:
        assert self.bot is not None and sender.customer_id is not None
        texts: list[str] = []
        if fresh:
            extra = {"script_variant": sender.variant} if sender.variant else None
            opening = await self.bot.start(conversation_id, sender.customer_id, "sms", extra)
            texts += opening.texts
        turn = await self.bot.send(conversation_id, text)
        return BotTurn(texts + turn.texts, turn.directives)

    async def _with_agent(self, conversation_id: str, reply_id: int, text: str) -> bool:
        """Gives the reply to the agent who has the conversation, if one has."""
        now = self.clock()

        def give(session: Session) -> bool:
            ticket = tickets.ticket_for_conversation(session, conversation_id)
            if ticket is None or ticket.status not in routing.OPEN:
                return False
            messages.post(session, conversation_id=conversation_id, sender="customer",
                          text=text, now=now, handoff_id=ticket.id)
            sms_messages.link_conversation(session, reply_id, conversation_id, "agent", now)
            return True

        return await in_transaction(self.engine, give)

    async def _log(self, conversation_id: str, reply_id: int, text: str, answers: list[str],
                   detail: str) -> None:
        """The exchange in the conversation's log, which an agent taking it over reads."""
        now = self.clock()

        def write(session: Session) -> None:
            messages.post(session, conversation_id=conversation_id, sender="customer",
                          text=text, now=now)
            for answer in answers:
                messages.post(session, conversation_id=conversation_id, sender="bot",
                              text=answer, now=now)
            sms_messages.link_conversation(session, reply_id, conversation_id, detail, now)

        await in_transaction(self.engine, write)

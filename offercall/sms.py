"""The SMS channel as an installation runs it: Kannel's sendsms for the gateway, signed chat
links for the messages, and the chat's bot for the replies."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import aiohttp
from sqlalchemy.engine import Engine

from bot.client import BotPort
from core.customer_tokens import chat_path
from core.settings import Settings
from offercall import kannel
from offercall.kannel import KannelSetup
from outbound.campaigns import targets_with_variants
from outbound.sms_channel import SmsChannel
from persistence.engine import session_scope

LINK_DAYS = 7
"""How long a text message's chat link stays valid."""


def chat_link(settings: Settings, customer_id: str) -> str:
    """The customer's signed chat link, as text messages and pop-ups carry it."""
    return settings.customer_base_url + chat_path(customer_id, settings.secret_key,
                                                  ttl_s=LINK_DAYS * 86400)


def sms_channel(settings: Settings, engine: Engine, http: aiohttp.ClientSession,
                bot: BotPort | None) -> SmsChannel:
    """The installation's SMS channel; ``bot`` answers replies (none: replies are only
    stored, and opt-outs honoured)."""
    return SmsChannel(
        engine=engine, http=http, bot=bot, rate=settings.sms_rate,
        gateway=kannel.gateway(KannelSetup.from_settings(settings), settings.sms_sender),
        bank=settings.bank_name, hotline=settings.bank_hotline,
        link_for=lambda customer_id: chat_link(settings, customer_id),
    )


async def send_campaign(settings: Settings, engine: Engine, campaign_id: str, *,
                        template: str = "offer", at_once: int = 16,
                        progress: Callable[[int, int], None] | None = None) -> Counter[str]:
    """Sends the campaign's text message to each of its customers the rules allow now;
    returns how many messages ended each way (``submitted``, ``queued``, ``failed``, ``wait``
    or the reason one was skipped). ``progress(done, total)`` follows along."""
    with session_scope(engine) as session:
        targets = targets_with_variants(session, campaign_id)
    outcomes: Counter[str] = Counter()
    gate = asyncio.Semaphore(at_once)
    async with aiohttp.ClientSession() as http:
        channel = sms_channel(settings, engine, http, bot=None)

        async def one(customer_id: str, variant: str) -> None:
            async with gate:
                outcome = await channel.send_offer(campaign_id, customer_id, template=template,
                                                   variant=variant)
            outcomes[outcome.reason if outcome.status == "skip" else outcome.status] += 1
            if progress is not None:
                progress(sum(outcomes.values()), len(targets))

        await asyncio.gather(*(one(c, v) for c, v in targets))
    return outcomes

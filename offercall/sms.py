"""The SMS channel as an installation runs it: Kannel's sendsms for the gateway, signed chat
links for the messages, and the chat's bot for the replies."""

from __future__ import annotations

import aiohttp
from sqlalchemy.engine import Engine

from bot.client import BotPort
from core.customer_tokens import issue
from core.settings import Settings
from offercall import kannel
from offercall.kannel import KannelSetup
from outbound.sms_channel import SmsChannel

LINK_DAYS = 7
"""How long a text message's chat link stays valid."""


def chat_link(settings: Settings, customer_id: str) -> str:
    """The customer's signed chat link, as text messages and pop-ups carry it."""
    token = issue(customer_id, settings.secret_key, ttl_s=LINK_DAYS * 86400)
    return f"{settings.customer_base_url}/chat?t={token}"


def sms_channel(settings: Settings, engine: Engine, http: aiohttp.ClientSession,
                bot: BotPort | None) -> SmsChannel:
    """The installation's SMS channel; ``bot`` answers replies (none: replies are only
    stored, and opt-outs honoured)."""
    return SmsChannel(
        engine=engine, gateway=kannel.gateway(KannelSetup.from_settings(settings), settings.sms_sender), http=http, bank=settings.bank_name,
        hotline=settings.bank_hotline, link_for=lambda customer_id: chat_link(settings, customer_id),
        rate=settings.sms_rate, bot=bot,
    )

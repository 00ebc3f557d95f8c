"""The bot as every channel of this process talks to it: the Rasa client with the safety net
that keeps a customer's request when the action server fails (``bot.failsafe``)."""

from __future__ import annotations

import aiohttp
from sqlalchemy.engine import Engine

from bot.client import RasaClient
from bot.failsafe import FailSafeBot, FailSafeConfig
from core.settings import Settings


def connect_bot(
    settings: Settings, http: aiohttp.ClientSession, engine: Engine, *, timeout_s: float
) -> FailSafeBot:
    """A bot client for one channel; ``timeout_s`` is how long that channel can wait for Rasa."""
    client = RasaClient(settings.rasa_url, http, api_token=settings.rasa_token, timeout_s=timeout_s)
    config = FailSafeConfig(
        bank=settings.bank_name, hotline=settings.bank_hotline, timezone=settings.timezone,
        callback_claim_s=settings.sla_callback_claim_s,
        callback_promise_min=settings.callback_promise_min,
    )
    return FailSafeBot(client, engine, config)

"""The aiohttp app factory: ``init_app(settings)`` wires the database and the Rasa client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from handoff.api import HANDOFF, TIMEZONE
from handoff.service import HandoffService
from handoff.sla import SlaPolicy
from offercall.bots import connect_bot
from offercall.db import make_engine
from offercall.migrations import migrate
from offercall.settings import Settings
from offercall.web.keys import ENGINE, HTTP, RASA, SETTINGS
from offercall.web.routes import setup_routes


def init_app(settings: Settings) -> web.Application:
    """Build the web application for ``settings``."""
    app = web.Application(client_max_size=256 * 1024)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_rasa_client)
    app.cleanup_ctx.append(_handoff)
    setup_routes(app)
    return app


def sla_policy(settings: Settings) -> SlaPolicy:
    """The handoff queue's time limits from the settings."""
    return SlaPolicy(
        voice_widen_s=settings.sla_voice_widen_s, voice_callback_s=settings.sla_voice_callback_s,
        chat_widen_s=settings.sla_chat_widen_s, chat_callback_s=settings.sla_chat_callback_s,
        callback_claim_s=settings.sla_callback_claim_s,
        callback_promise_min=settings.callback_promise_min,
    )


async def _handoff(app: web.Application) -> AsyncIterator[None]:
    service = HandoffService(app[ENGINE], sla_policy(app[SETTINGS]))
    app[HANDOFF], app[TIMEZONE] = service, app[SETTINGS].timezone
    await service.start()
    yield
    await service.stop()


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = make_engine(app[SETTINGS].database_url)
    migrate(engine)
    app[ENGINE] = engine
    yield
    engine.dispose()


async def _rasa_client(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with aiohttp.ClientSession() as session:
        app[HTTP] = session
        app[RASA] = connect_bot(settings, session, app[ENGINE],
                                timeout_s=settings.chat_timeout_ms / 1000)
        yield

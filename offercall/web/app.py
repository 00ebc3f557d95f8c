"""The aiohttp app factory: ``init_app(settings)`` wires the database, the bot, the handoff
queue, the chat and the media streams into one web server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from bot.actions import texts
from chat.config import CHAT, ChatConfig
from core.settings import Settings
from handoff.api import HANDOFF, TIMEZONE
from handoff.service import HandoffService
from handoff.sla import SlaPolicy
from offercall.bots import connect_bot
from offercall.voice_calls import VoiceRuntime
from offercall.web.keys import ENGINE, HTTP, SETTINGS, VOICE
from offercall.web.outages import database_outages
from offercall.web.routes import setup_routes
from outbound.upload_jobs import UploadRunner
from outbound.web.call_log_api import RECORDINGS
from outbound.web.campaign_common import CAMPAIGN_API, CampaignApiConfig
from outbound.web.campaign_input import Installation
from outbound.web.whitelist_api import WHITELIST_UPLOADS
from persistence.engine import open_database


def init_app(settings: Settings) -> web.Application:
    """Build the web application for ``settings``."""
    app = web.Application(client_max_size=256 * 1024, middlewares=[database_outages])
    app[SETTINGS] = settings
    app[VOICE] = VoiceRuntime(settings)  # its models load on the first call, not here
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_chat)
    app.cleanup_ctx.append(_handoff)
    app.cleanup_ctx.append(_whitelist_uploads)
    app[RECORDINGS] = settings.recordings_dir
    app[CAMPAIGN_API] = CampaignApiConfig(
        Installation(texts.script_variants(), settings.dial_lines), settings.timezone)
    setup_routes(app)
    return app


async def _handoff(app: web.Application) -> AsyncIterator[None]:
    service = HandoffService(app[ENGINE], SlaPolicy.from_settings(app[SETTINGS]))
    app[HANDOFF], app[TIMEZONE] = service, app[SETTINGS].timezone
    await service.start()
    yield
    await service.stop()


async def _whitelist_uploads(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    uploads = UploadRunner(settings.var_dir / "uploads", app[ENGINE],
                           today=lambda: datetime.now(ZoneInfo(settings.timezone)).date())
    app[WHITELIST_UPLOADS] = uploads
    await uploads.start()  # resumes what a crashed server left half done
    yield
    await uploads.stop()


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = open_database(app[SETTINGS])
    app[ENGINE] = engine
    yield
    engine.dispose()


async def _chat(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with aiohttp.ClientSession() as session:
        app[HTTP] = session
        bot = connect_bot(settings, session, app[ENGINE], timeout_s=settings.chat_timeout_ms / 1000)
        app[CHAT] = ChatConfig(bot=bot, secret_key=settings.secret_key)
        yield

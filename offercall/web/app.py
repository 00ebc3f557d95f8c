"""The aiohttp app factory: ``init_app(settings)`` wires the database, the bot, the handoff
queue, the chat and the media streams into one web server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from bot.actions import texts
from branches.policies import lead_policies
from chat.config import CHAT, ChatConfig
from core.settings import Settings
from handoff.api import HANDOFF, TIMEZONE
from handoff.service import HandoffService
from handoff.sla import SlaPolicy
from lending.partner_callbacks import CallbackSender
from lending.partners import load_partners
from lending.web.intake_api import PARTNER_INTAKE, PartnerIntake
from lending.web.loan_api import LOAN_API, LoanApiConfig
from offercall.bots import connect_bot
from offercall.sms import sms_channel
from offercall.voice_calls import VoiceRuntime
from offercall.web.keys import ENGINE, HTTP, SETTINGS, VOICE
from offercall.web.outages import database_outages
from offercall.web.routes import setup_routes
from outbound.sms_channel import SmsChannel
from outbound.upload_jobs import UploadRunner
from outbound.web.call_log_api import RECORDINGS
from outbound.web.campaign_common import CAMPAIGN_API, CampaignApiConfig
from outbound.web.campaign_input import Installation
from outbound.web.popup_api import POPUP_API, PopupApiConfig
from outbound.web.sms_api import SMS_CHANNEL, SMS_KEY
from outbound.web.whitelist_api import WHITELIST_UPLOADS
from persistence.engine import open_database

log = logging.getLogger(__name__)


def init_app(settings: Settings) -> web.Application:
    """Build the web application for ``settings``."""
    app = web.Application(client_max_size=256 * 1024, middlewares=[database_outages])
    app[SETTINGS] = settings
    app[VOICE] = VoiceRuntime(settings)  # its models load on the first call, not here
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_chat)
    app.cleanup_ctx.append(_sms)
    app.cleanup_ctx.append(_handoff)
    app.cleanup_ctx.append(_whitelist_uploads)
    app.cleanup_ctx.append(_partner_intake)
    app.cleanup_ctx.append(_loans)
    app[RECORDINGS] = settings.recordings_dir
    app[CAMPAIGN_API] = CampaignApiConfig(
        Installation(texts.script_variants(), settings.dial_lines), settings.timezone)
    app[POPUP_API] = PopupApiConfig(settings.secret_key)
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


async def _loans(app: web.Application) -> AsyncIterator[None]:
    app[LOAN_API] = LoanApiConfig(app[SETTINGS].loan_api_key, app[ENGINE])
    yield


async def _partner_intake(app: web.Application) -> AsyncIterator[None]:
    """The partner intake API and the posting of its results to the partners, which goes on
    until each is acknowledged (every web server posts; each result is posted by one)."""
    settings = app[SETTINGS]
    partners = load_partners(settings.partners_path)
    sender = CallbackSender(app[ENGINE], partners)
    app[PARTNER_INTAKE] = PartnerIntake(app[ENGINE], partners, settings.timezone,
                                        lead_policies(settings), sender)
    sender.start()
    yield
    await sender.stop()


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


RESEND_EVERY_S = 30.0


async def _sms(app: web.Application) -> AsyncIterator[None]:
    """The SMS channel, when the installation has one, and its resending of the messages
    its gateway could not take."""
    settings = app[SETTINGS]
    if settings.sms_gateway == "off":
        yield
        return
    channel = sms_channel(settings, app[ENGINE], app[HTTP], app[CHAT].bot)
    app[SMS_CHANNEL], app[SMS_KEY] = channel, settings.sms_key
    resending = asyncio.create_task(_resend_queued(channel))
    yield
    resending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await resending


async def _resend_queued(channel: SmsChannel) -> None:
    while True:
        await asyncio.sleep(RESEND_EVERY_S)
        try:
            await channel.resend_queued(older_than_s=RESEND_EVERY_S)
        except Exception:  # a database outage: the next round tries again
            log.exception("sms.resend.failed")

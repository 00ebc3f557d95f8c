"""The aiohttp app factory: ``init_app(settings)`` wires the database and the Rasa client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bot.client import RasaClient
from offercall.db import make_engine
from offercall.migrations import migrate
from offercall.settings import Settings
from offercall.web.keys import ENGINE, HTTP, RASA, SETTINGS
from offercall.web.routes import setup_routes


def init_app(settings: Settings) -> web.Application:
    """Build the web application for ``settings``."""
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_rasa_client)
    setup_routes(app)
    return app


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
        app[RASA] = RasaClient(settings.rasa_url, session, api_token=settings.rasa_token)
        yield

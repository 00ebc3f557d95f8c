"""The web server's answer while the database is away (a restart, a failover): 503 with the
chat's apology and a reason, instead of a 500 and a stack trace. Nothing was written: the
request's transaction failed as a whole, so the client may simply try again."""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy.exc import DBAPIError

from chat.widget import UNAVAILABLE
from offercall.metrics import Handler
from persistence.errors import is_database_away

log = logging.getLogger(__name__)

RETRY_AFTER_S = 2


@web.middleware
async def database_outages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns a database outage during a request into a 503 the client can act on."""
    try:
        return await handler(request)
    except DBAPIError as exc:
        if not is_database_away(exc):
            raise
        log.error("web.database.unavailable",
                  extra={"path": request.path, "error": type(exc.orig).__name__})
        return web.json_response(
            {"error": "the database is unavailable, please try again shortly",
             "texts": [UNAVAILABLE]},
            status=503, headers={"Retry-After": str(RETRY_AFTER_S)})

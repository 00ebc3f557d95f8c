"""``GET /metrics`` for offercall's aiohttp servers (the web server and the dialer worker).

The exposition is prometheus_client's default registry of the process, plus any registry the
server adds (e.g. the agents' queue, read from the database at scrape time: then built off
the event loop). Who may scrape: :mod:`bot.scrape`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry

from bot.scrape import CONTENT_TYPE, exposition, metrics_token, refusal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def metrics_handler(
    token: str | None, *extra: CollectorRegistry, off_loop: bool = False
) -> Handler:
    """A ``GET /metrics`` handler serving the default registry and ``extra``; ``off_loop``
    builds the exposition in a thread (for collectors that block, e.g. on the database)."""
    registries = (REGISTRY, *extra)

    async def metrics(request: web.Request) -> web.Response:
        refused = refusal(request.headers.get("Authorization"), request.remote, token)
        if refused is not None:
            return web.json_response({"error": refused.message}, status=refused.status,
                                     headers=refused.headers)
        if off_loop:
            body = await asyncio.to_thread(exposition, *registries)
        else:
            body = exposition(*registries)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE,
                                                "Cache-Control": "no-store"})

    return metrics


def add_metrics_route(
    app: web.Application, *extra: CollectorRegistry, off_loop: bool = False
) -> None:
    """Serves ``GET /metrics`` on ``app`` (see :func:`metrics_handler`). The token is read now
    (``OFFERCALL_METRICS_TOKEN``), so a malformed one stops the server at start-up."""
    app.router.add_get("/metrics", metrics_handler(metrics_token(), *extra, off_loop=off_loop))

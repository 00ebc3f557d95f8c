"""The web server's metrics: the agents' queue (read at scrape time), the websockets open,
and ``GET /metrics``. The chat's turn metrics are the chat's own (:mod:`chat.metrics`)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge

from handoff.metrics import QueueCollector
from handoff.sla import SlaPolicy
from offercall.metrics import Handler, add_metrics_route
from offercall.web.keys import ENGINE, SETTINGS

WEBSOCKETS_OPEN = Gauge(
    "offercall_websockets_open",
    "Websocket connections open, by route (the chat widget, the agents' console, media streams)",
    ["route"],
)


@web.middleware
async def count_websockets(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A websocket's handler runs as long as the socket is open: count it meanwhile."""
    resource = request.match_info.route.resource
    if resource is None or request.headers.get("Upgrade", "").lower() != "websocket":
        return await handler(request)
    with WEBSOCKETS_OPEN.labels(resource.canonical).track_inprogress():
        return await handler(request)


def add_web_metrics(app: web.Application) -> None:
    """``GET /metrics`` with the queue's metrics, and the websocket count."""
    queue = CollectorRegistry(auto_describe=False)
    queue.register(QueueCollector(lambda: app[ENGINE], SlaPolicy.from_settings(app[SETTINGS])))
    app.middlewares.append(count_websockets)
    add_metrics_route(app, queue, off_loop=True)

"""Every route of the web server, in one place."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from handoff.api import add_console_routes
from offercall.web import chat, media, widget

STATIC_DIR = Path(__file__).resolve().parent / "static"


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def chat_page(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "chat.html", headers={"Cache-Control": "no-store"})


def setup_routes(app: web.Application) -> None:
    """Register the routes."""
    app.router.add_get("/health", health)
    app.router.add_get("/chat", chat_page)
    app.router.add_post("/api/chat/start", chat.start_conversation)
    app.router.add_post("/api/chat/{conversation_id}/messages", chat.send_message)
    app.router.add_get("/ws/widget", widget.widget_socket)
    app.router.add_get("/media/{protocol}", media.media_stream)
    add_console_routes(app)

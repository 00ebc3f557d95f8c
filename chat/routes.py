"""The chat's routes: the widget page, its websocket, and the HTTP chat API."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from chat import http_api, widget

STATIC_DIR = Path(__file__).resolve().parent / "static"


async def chat_page(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "chat.html", headers={"Cache-Control": "no-store"})


def add_chat_routes(app: web.Application) -> None:
    """Registers ``/chat``, ``/ws/widget`` and ``/api/chat/*``."""
    app.router.add_get("/chat", chat_page)
    app.router.add_post("/api/chat/start", http_api.start_conversation)
    app.router.add_post("/api/chat/{conversation_id}/messages", http_api.send_message)
    app.router.add_get("/ws/widget", widget.widget_socket)

"""The chat endpoint: customers' messages to the bot and back, over HTTP or a websocket.

The web widget and the voice layer build on it. A conversation starts with the customer's
id; the bot opens, and every reply carries the bot's texts and its directives.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from bot.client import BotTurn, RasaUnavailable
from offercall import store
from offercall.db import session_scope
from offercall.web.keys import ENGINE, RASA

log = logging.getLogger(__name__)


class ChatError(Exception):
    """A chat request that cannot be served, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def turn_json(turn: BotTurn) -> dict[str, Any]:
    """A bot turn as the chat clients see it."""
    return {
        "texts": turn.texts,
        "directives": [{"name": d.name, **d.data} for d in turn.directives],
    }


async def _known_customer(app: web.Application, customer_id: str) -> bool:
    def lookup() -> bool:
        with session_scope(app[ENGINE]) as session:
            return store.get_customer_offer(session, customer_id) is not None

    return await asyncio.to_thread(lookup)


async def open_conversation(
    app: web.Application, customer_id: Any, channel: str = "chat"
) -> tuple[str, BotTurn]:
    """Check the customer, start a conversation and return its id and the bot's opening."""
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise ChatError(400, "customer_id is required")
    if not await _known_customer(app, customer_id):
        raise ChatError(404, f"unknown customer {customer_id!r}")
    conversation_id = f"{channel}-{uuid.uuid4().hex}"
    return conversation_id, await _ask_bot(app, conversation_id, None, customer_id, channel)


async def _ask_bot(
    app: web.Application,
    conversation_id: str,
    text: str | None,
    customer_id: str | None = None,
    channel: str = "chat",
) -> BotTurn:
    try:
        if text is None:
            return await app[RASA].start(conversation_id, customer_id or "", channel)
        return await app[RASA].send(conversation_id, text)
    except RasaUnavailable as exc:
        log.error("chat.rasa.unavailable", extra={"conversation_id": conversation_id})
        raise ChatError(503, "the assistant is unavailable, please try again shortly") from exc


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise ChatError(400, "the body must be JSON") from exc
    if not isinstance(body, dict):
        raise ChatError(400, "the body must be a JSON object")
    return body


def _error(exc: ChatError) -> web.Response:
    return web.json_response({"error": str(exc)}, status=exc.status)


async def start_conversation(request: web.Request) -> web.Response:
    """POST /api/chat/start {"customer_id"} -> {"conversation_id", "texts", "directives"}."""
    try:
        body = await _json_body(request)
        conversation_id, turn = await open_conversation(request.app, body.get("customer_id"))
    except ChatError as exc:
        return _error(exc)
    return web.json_response({"conversation_id": conversation_id, **turn_json(turn)})


async def send_message(request: web.Request) -> web.Response:
    """POST /api/chat/{conversation_id}/messages {"text"} -> {"texts", "directives"}."""
    try:
        body = await _json_body(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ChatError(400, "text is required")
        turn = await _ask_bot(request.app, request.match_info["conversation_id"], text.strip())
    except ChatError as exc:
        return _error(exc)
    return web.json_response(turn_json(turn))


async def chat_websocket(request: web.Request) -> web.WebSocketResponse:
    """GET /ws/chat: {"type":"start","customer_id"} then {"type":"message","text"} frames.

    The server answers each with {"type":"bot", "conversation_id", "texts", "directives"}
    or {"type":"error", "status", "message"}; the socket stays open after an error.
    """
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    conversation_id: str | None = None
    async for frame in ws:
        if frame.type != WSMsgType.TEXT:
            continue
        try:
            message = frame.json()
            if not isinstance(message, dict):
                raise ChatError(400, "frames must be JSON objects")
            if message.get("type") == "start":
                conversation_id, turn = await open_conversation(
                    request.app, message.get("customer_id")
                )
            elif message.get("type") == "message":
                if conversation_id is None:
                    raise ChatError(409, "send a start frame first")
                text = message.get("text")
                if not isinstance(text, str) or not text.strip():
                    raise ChatError(400, "text is required")
                turn = await _ask_bot(request.app, conversation_id, text.strip())
            else:
                raise ChatError(400, "unknown frame type")
        except ValueError:
            await ws.send_json({"type": "error", "status": 400, "message": "frames must be JSON"})
            continue
        except ChatError as exc:
            await ws.send_json({"type": "error", "status": exc.status, "message": str(exc)})
            continue
        await ws.send_json({"type": "bot", "conversation_id": conversation_id, **turn_json(turn)})
    return ws

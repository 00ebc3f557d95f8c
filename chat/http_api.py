"""The plain HTTP chat API: a customer's messages to the bot and back, for app back ends
and benchmarks. Requests carry the customer's signed token (as in the app's chat link); the
bot opens, and every reply carries the bot's texts and its directives. The in-app widget
uses the websocket in :mod:`chat.widget` instead, which adds agent takeover.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from aiohttp import web

from bot.client import BotTurn, RasaUnavailable
from chat import metrics
from chat.config import CHAT
from core.customer_tokens import TokenError, verify
from handoff.api import HANDOFF
from persistence import store
from persistence.engine import session_scope
from persistence.schema import Conversation

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
        with session_scope(app[HANDOFF].engine) as session:
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
            return await app[CHAT].bot.start(conversation_id, customer_id or "", channel)
        return await app[CHAT].bot.send(conversation_id, text)
    except RasaUnavailable as exc:
        log.error("chat.rasa.unavailable", extra={"conversation_id": conversation_id})
        if text is not None:
            metrics.count_failure("http", exc)
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


def _customer_of(request: web.Request, body: dict[str, Any]) -> str:
    try:
        return verify(body.get("token", ""), request.app[CHAT].secret_key)
    except TokenError as exc:
        raise ChatError(401, str(exc)) from exc


async def _owned_by(app: web.Application, conversation_id: str, customer_id: str) -> bool:
    def check() -> bool:
        with session_scope(app[HANDOFF].engine) as session:
            conversation = session.get(Conversation, conversation_id)
            return conversation is not None and conversation.customer_id == customer_id

    return await asyncio.to_thread(check)


async def start_conversation(request: web.Request) -> web.Response:
    """POST /api/chat/start {"token"} -> {"conversation_id", "texts", "directives"}.

    ``token`` is the signed customer token of the app's chat link."""
    try:
        body = await _json_body(request)
        conversation_id, turn = await open_conversation(request.app, _customer_of(request, body))
    except ChatError as exc:
        return _error(exc)
    return web.json_response({"conversation_id": conversation_id, **turn_json(turn)})


async def send_message(request: web.Request) -> web.Response:
    """POST /api/chat/{conversation_id}/messages {"token", "text"} -> {"texts", "directives"}."""
    received = time.perf_counter()
    try:
        body = await _json_body(request)
        customer_id = _customer_of(request, body)
        conversation_id = request.match_info["conversation_id"]
        if not await _owned_by(request.app, conversation_id, customer_id):
            raise ChatError(403, "that conversation is not yours")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ChatError(400, "text is required")
        turn = await _ask_bot(request.app, conversation_id, text.strip())
    except ChatError as exc:
        return _error(exc)
    answer = web.json_response(turn_json(turn))
    metrics.observe_turn("http", received)
    return answer

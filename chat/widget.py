"""The in-app chat widget's websocket: ``GET /ws/widget``.

The app's pop-up opens ``/chat?t=<signed customer token>``; the page connects here and
sends ``{"type": "hello", "token", "conversation_id"?, "after"?}``. The server answers
``ready`` (with the conversation id and who the customer is talking to: ``bot``,
``waiting`` or ``agent``) and then every message of the conversation as ``message``
frames carrying ids. After a network drop the page says hello again with the last id it
saw; the server replays what it missed. The page sends ``{"type": "message", "text",
"client_id"}``; a resent client id is acknowledged again but never stored twice.

Messages go to the bot, or, once an agent has the conversation, to the agent (the bot is
paused until the agent closes the ticket). All messages are written to the durable log
first, then pushed to every process's sockets by the handoff feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from datetime import datetime
from typing import Any

from aiohttp import WSMsgType, web
from sqlalchemy.orm import Session

from bot.client import BotTurn, RasaUnavailable
from chat import lost_turns, metrics
from chat.config import CHAT
from core.customer_tokens import TokenError, verify
from core.owners import pid_alive
from handoff import messages, routing, tickets
from handoff.api import HANDOFF
from handoff.feed import Item
from persistence import store
from persistence.errors import DATABASE_AWAY
from persistence.schema import Conversation

log = logging.getLogger(__name__)

MAX_FRAME = 8 * 1024
UNAVAILABLE = "抱歉，系统暂时繁忙，请稍后再试。"
REPLY_STORE_TRIES = (0.25, 0.5, 1.0, 2.0)
"""Pauses (s) between tries to log the bot's answer while the database is away (a restart or a
fail-over takes seconds): the customer's turn was logged and answered, so the answer is kept,
and the feed shows it on whichever socket the customer has by then."""


def conversation_state(ticket: tickets.Ticket | None) -> str:
    """Who the customer is talking to: ``bot``, ``waiting`` (for an agent) or ``agent``."""
    if ticket is None or ticket.kind != "live" or ticket.status not in routing.OPEN:
        return "bot"
    return "agent" if ticket.status in ("claimed", "connected") else "waiting"


class WidgetError(Exception):
    """A frame the server refuses, with a status like HTTP's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _WidgetSocket:
    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.app = request.app
        self.service = request.app[HANDOFF]
        self.ws = ws
        self.customer_id: str | None = None
        self.conversation_id: str | None = None
        self.sent: set[int] = set()
        self.ticket_ids: set[int] = set()
        self.state = "bot"
        self.lock = asyncio.Lock()
        self.awaiting: dict[int, float] = {}
        """A bot reply's first message id -> when the customer's message it answers came in."""

    # ------------------------------------------------------------ pushing
    def wants(self, item: Item) -> bool:
        if isinstance(item, messages.LoggedMessage):
            return item.conversation_id == self.conversation_id
        return item.handoff_id in self.ticket_ids

    async def push(self, item: Item) -> None:
        async with self.lock:
            if isinstance(item, messages.LoggedMessage):
                await self._send_message(item)
                handed_off = {d.get("handoff_id") for d in item.data.get("directives", [])}
                if handed_off - {None} - self.ticket_ids:
                    self.ticket_ids |= {i for i in handed_off if isinstance(i, int)}
                    await self._refresh_state()
            else:
                await self._refresh_state()

    async def _send_message(self, message: messages.LoggedMessage) -> None:
        if message.id in self.sent:
            return
        self.sent.add(message.id)
        await self.ws.send_json({"type": "message", **_customer_view(message)})
        received = self.awaiting.pop(message.id, None)
        if received is not None:
            metrics.observe_turn("widget", received)

    async def _refresh_state(self) -> None:
        conversation_id = self.conversation_id
        if conversation_id is None:
            return
        ticket = await self.service.run(
            lambda session, _: tickets.ticket_for_conversation(session, conversation_id))
        if ticket is not None:
            self.ticket_ids.add(ticket.id)
        state = conversation_state(ticket)
        if state != self.state:
            self.state = state
            await self.ws.send_json({"type": "state", "state": state})

    # ------------------------------------------------------------ frames
    async def hello(self, frame: dict[str, Any]) -> None:
        try:
            customer_id = verify(frame.get("token", ""), self.app[CHAT].secret_key)
        except TokenError as exc:
            raise WidgetError(401, str(exc)) from exc
        wanted, after = frame.get("conversation_id"), frame.get("after", 0)
        if not isinstance(after, int) or after < 0:
            raise WidgetError(400, "after must be a message id")
        if wanted is not None:
            if not isinstance(wanted, str) or not await self._belongs(wanted, customer_id):
                raise WidgetError(403, "that conversation is not yours")
            conversation_id = wanted
        else:
            conversation_id = await self._open(customer_id)
        display = await self.service.run(lambda session, _: _display_name(session, customer_id))
        async with self.lock:
            self.customer_id, self.conversation_id = customer_id, conversation_id
            self.sent = set()
            ticket = await self.service.run(
                lambda session, _: tickets.ticket_for_conversation(session, conversation_id))
            self.state = conversation_state(ticket)
            self.ticket_ids = {ticket.id} if ticket is not None else set()
            await self.ws.send_json({"type": "ready", "conversation_id": conversation_id,
                                     "customer": {"name": display}, "state": self.state})
            missed = await self.service.run(
                lambda session, _: messages.history(session, conversation_id, after))
            for message in missed:
                await self._send_message(message)
        await self._apologise_for_lost_turn(conversation_id)

    async def _apologise_for_lost_turn(self, conversation_id: str) -> None:
        """A customer back from a dropped socket whose last message went to a server that
        died before answering is asked to say it again (:mod:`chat.lost_turns`)."""
        owner = self.app[CHAT].owner
        apology = await self.service.run(lambda session, now: lost_turns.apologise_if_lost(
            session, conversation_id, now, me=owner, pid_alive=pid_alive))
        if apology is not None:
            log.warning("widget.lost_turn.apologised", extra={"conversation_id": conversation_id})
            async with self.lock:
                await self._send_message(apology)

    async def _belongs(self, conversation_id: str, customer_id: str) -> bool:
        def check(session: Session, _: datetime) -> bool:
            conversation = session.get(Conversation, conversation_id)
            return conversation is not None and conversation.customer_id == customer_id

        return await self.service.run(check)

    async def _open(self, customer_id: str) -> str:
        conversation_id = f"chat-{uuid.uuid4().hex}"

        def known(session: Session, _: datetime) -> bool:
            return store.get_customer_offer(session, customer_id) is not None

        if not await self.service.run(known):
            raise WidgetError(404, "this customer is not known")
        try:
            turn = await self.app[CHAT].bot.start(conversation_id, customer_id, "chat")
        except RasaUnavailable as exc:
            raise WidgetError(503, UNAVAILABLE) from exc
        await self._store_bot_turn_durably(conversation_id, turn)
        return conversation_id

    async def message(self, frame: dict[str, Any]) -> None:
        received = time.perf_counter()
        conversation_id = self.conversation_id
        if conversation_id is None:
            raise WidgetError(409, "say hello first")
        text, client_id = frame.get("text"), frame.get("client_id")
        if not isinstance(text, str) or not text.strip():
            raise WidgetError(400, "text is required")
        if len(text) > messages.MAX_TEXT:
            raise WidgetError(413, f"a message has at most {messages.MAX_TEXT} characters")
        if not isinstance(client_id, str) or not 0 < len(client_id) <= 64:
            raise WidgetError(400, "client_id (up to 64 characters) is required")

        owner = self.app[CHAT].owner.tag

        def save(session: Session, now: datetime) -> tuple[messages.LoggedMessage, bool, str]:
            ticket = tickets.ticket_for_conversation(session, conversation_id)
            state = conversation_state(ticket)
            saved, new = messages.post(
                session, conversation_id=conversation_id, sender="customer", text=text.strip(),
                client_msg_id=client_id, now=now,
                handoff_id=ticket.id if ticket is not None and state != "bot" else None,
                # while the bot has the turn, say who took it there (chat.lost_turns)
                data={lost_turns.TURN_OWNER: owner} if state == "bot" else None,
            )
            return saved, new, state

        saved, new, state = await self.service.run(save)
        await self.ws.send_json({"type": "ack", "client_id": client_id, "id": saved.id})
        if new and state == "bot":
            try:
                turn = await self.app[CHAT].bot.send(conversation_id, saved.text)
            except RasaUnavailable as exc:
                log.error("widget.rasa.unavailable", extra={"conversation_id": conversation_id})
                metrics.count_failure("widget", exc)
                turn = BotTurn([UNAVAILABLE], [])
            reply = await self._store_bot_turn_durably(conversation_id, turn)
            self._time_reply(reply, received)

    def _time_reply(self, reply: int | None, received: float) -> None:
        """The turn is timed when the reply's first message goes out on this socket (pushed by
        the feed, :meth:`_send_message`), or now if the feed was quicker."""
        if reply is None:
            return
        if reply in self.sent:
            metrics.observe_turn("widget", received)
        else:
            self.awaiting[reply] = received

    async def leave(self) -> None:
        """The customer closed the chat: a wait for an agent ends as abandoned."""
        conversation_id = self.conversation_id
        if conversation_id is None:
            return

        def work(session: Session, now: datetime) -> None:
            ticket = tickets.ticket_for_conversation(session, conversation_id)
            if ticket is not None and conversation_state(ticket) == "waiting":
                tickets.abandon(session, ticket.id, "the customer left the chat", now)

        await self.service.run(work)

    async def _store_bot_turn_durably(self, conversation_id: str, turn: BotTurn) -> int | None:
        """:meth:`_store_bot_turn`, tried again while the database is away (then it raises)."""
        for pause in REPLY_STORE_TRIES:
            try:
                return await self._store_bot_turn(conversation_id, turn)
            except DATABASE_AWAY:
                log.warning("widget.reply.store_retry", extra={"conversation_id": conversation_id})
                await asyncio.sleep(pause)
        return await self._store_bot_turn(conversation_id, turn)

    async def _store_bot_turn(self, conversation_id: str, turn: BotTurn) -> int | None:
        """Logs the bot's turn; returns the id of its first message (None: it said nothing)."""
        directives = [{"name": d.name, **d.data} for d in turn.directives]

        def work(session: Session, now: datetime) -> int | None:
            ids = []
            for index, text in enumerate(turn.texts):
                last = index == len(turn.texts) - 1
                ids.append(messages.post(session, conversation_id=conversation_id, sender="bot",
                                         text=text, now=now,
                                         data={"directives": directives} if last else {})[0].id)
            if not turn.texts:  # logged even when empty: the customer's turn is answered
                data = {"directives": directives} if directives else {"event": "no_reply"}
                ids.append(messages.post(session, conversation_id=conversation_id, sender="system",
                                         text="", now=now, data=data)[0].id)
            return ids[0] if ids else None

        return await self.service.run(work)


def _customer_view(message: messages.LoggedMessage) -> dict[str, Any]:
    return {"id": message.id, "sender": message.sender, "text": message.text,
            "client_id": message.client_msg_id, "at": message.created_at.isoformat(),
            "directives": message.data.get("directives", [])}


def _display_name(session: Session, customer_id: str) -> str:
    found = store.get_customer_offer(session, customer_id)
    return found.masked_name if found else ""


async def widget_socket(request: web.Request) -> web.WebSocketResponse:
    """The customer's chat connection (see the module docstring)."""
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_FRAME)
    await ws.prepare(request)
    widget = _WidgetSocket(request, ws)
    feed = request.app[HANDOFF].feed
    subscription = feed.subscribe(widget.wants)

    async def forward() -> None:
        while True:
            await widget.push(await subscription.get())

    pusher = asyncio.create_task(forward())
    try:
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            kind = None
            try:
                data = json.loads(frame.data)
                if not isinstance(data, dict):
                    raise WidgetError(400, "frames must be JSON objects")
                kind = data.get("type")
                if kind == "hello":
                    await widget.hello(data)
                elif kind == "message":
                    await widget.message(data)
                elif kind == "leave":
                    await widget.leave()
                    await ws.close()
                elif kind == "ping":
                    await ws.send_json({"type": "pong"})
                else:
                    raise WidgetError(400, "unknown frame type")
            except ValueError:
                await ws.send_json({"type": "error", "status": 400, "message": "frames must be JSON"})
            except WidgetError as exc:
                await ws.send_json({"type": "error", "status": exc.status, "message": str(exc)})
            except DATABASE_AWAY:  # the database is away: nothing written
                log.error("widget.database.unavailable", extra={"kind": kind})
                await ws.send_json({"type": "error", "status": 503, "message": UNAVAILABLE})
    except ConnectionResetError:
        pass
    finally:
        feed.unsubscribe(subscription)
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pusher
    return ws

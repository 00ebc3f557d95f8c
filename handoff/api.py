"""The agent console's HTTP API and live websocket.

Agents and supervisors log in with a username and password and get a session (an HttpOnly
``SameSite=Strict`` cookie for the browser, or the same token as ``Authorization: Bearer``
for API clients). An agent sees only their own queue and tickets; a supervisor sees all.

``GET /ws/agent`` pushes, with no polling: a ``snapshot`` of visible tickets, then
``ticket`` (an update), ``ticket_gone`` (no longer in this agent's view), ``message`` (a
live line of a visible ticket's conversation) and, for supervisors, ``stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import WSMsgType, web
from sqlalchemy.orm import Session

from core.vocabulary import AuditAction
from handoff import agents, messages, routing, tickets
from handoff.agents import AgentAccount
from handoff.feed import Item
from handoff.service import AGENT_JOINED, AGENT_LEFT, HandoffService
from handoff.views import message_view, ticket_view
from persistence import audit, branches
from persistence.audit import Actor

log = logging.getLogger(__name__)

HANDOFF = web.AppKey("handoff", HandoffService)
TIMEZONE = web.AppKey("handoff_timezone", str)
COOKIE = "oc_agent"
STATIC = Path(__file__).resolve().parent / "static"
MAX_WS_MESSAGE = 16 * 1024
PRESENCE_EVERY_S = 15.0
STATS_EVERY_S = 5.0


def add_console_routes(app: web.Application) -> None:
    """Registers the console page, its API and its websocket on ``app``; the app's start-up
    puts the process's :class:`HandoffService` at ``app[HANDOFF]`` and the bank's time zone
    at ``app[TIMEZONE]``."""
    app.router.add_get("/console", console_page)
    app.router.add_post("/api/agent/login", login)
    app.router.add_post("/api/agent/logout", logout)
    app.router.add_get("/api/agent/me", me)
    app.router.add_get("/api/agent/tickets", list_tickets)
    app.router.add_get("/api/agent/tickets/{ticket_id:\\d+}", show_ticket)
    app.router.add_post("/api/agent/tickets/{ticket_id:\\d+}/claim", claim_ticket)
    app.router.add_post("/api/agent/tickets/next", claim_next_ticket)
    app.router.add_post("/api/agent/tickets/{ticket_id:\\d+}/messages", say_to_customer)
    app.router.add_post("/api/agent/tickets/{ticket_id:\\d+}/close", close_ticket)
    app.router.add_get("/api/supervisor/stats", supervisor_stats)
    app.router.add_get("/ws/agent", agent_socket)


async def console_page(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "console.html", headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------- helpers
NOT_A_CONSOLE_ROLE = "the agents' console is for agents and supervisors; this account is a {}"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip()
    return request.cookies.get(COOKIE, "")


async def _viewer(request: web.Request) -> AgentAccount:
    """The logged-in account, or a 401."""
    token = _token(request)
    service = request.app[HANDOFF]
    account = await service.run(lambda session, now: agents.account_for_token(session, token, now))
    if account is None:
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "log in first"}), content_type="application/json"
        )
    if not account.works_tickets:
        raise web.HTTPForbidden(text=json.dumps({"error": NOT_A_CONSOLE_ROLE.format(account.role)}),
                                content_type="application/json")
    return account


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": "the body must be JSON"}),
                                 content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "the body must be a JSON object"}),
                                 content_type="application/json")
    return body


def _view(session: Session, ticket: tickets.Ticket, viewer: AgentAccount, now: datetime) -> dict[str, Any]:
    live = [m for m in messages.history(session, ticket.conversation_id) if m.created_at >= ticket.created_at]
    return ticket_view(ticket, viewer, now, branches.branch_names(session), live)


def _visible(session: Session, viewer: AgentAccount, now: datetime) -> list[dict[str, Any]]:
    open_ = tickets.open_tickets(session)
    shown = [t for t in open_ if routing.can_view(viewer.profile(), t.facts())]
    order = {f.ticket_id: i for i, f in enumerate(
        sorted((t.facts() for t in shown), key=lambda f: routing.priority_key(f, now)))}
    shown.sort(key=lambda t: (t.claimed_by != viewer.id, order[t.id]))
    return [_view(session, t, viewer, now) for t in shown]


def _ticket_id(request: web.Request) -> int:
    return int(request.match_info["ticket_id"])


def _day_start(now: datetime, timezone: str) -> datetime:
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _stats_json(session: Session, now: datetime, timezone: str) -> dict[str, Any]:
    s = tickets.stats(session, now, _day_start(now, timezone))
    return {"waiting": s.waiting, "longest_wait_s": round(s.longest_wait_s, 1),
            "with_agents": s.with_agents, "agents_online": s.agents_online,
            "sla_breaches_today": s.sla_breaches_today}


# ------------------------------------------------------------- endpoints
async def login(request: web.Request) -> web.Response:
    """POST {"username", "password"} -> {"token", "agent"} and the session cookie."""
    body = await _body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return _error(400, "username and password are required")
    def work(session: Session, now: datetime) -> tuple[str | None, AgentAccount | None]:
        account = agents.authenticate(session, username, password, now)
        if account is None or not account.works_tickets:
            return None, account
        return agents.open_session(session, account.id, now), account

    token, account = await request.app[HANDOFF].run(work)
    if account is None:
        log.info("handoff.login.refused")
        return _error(401, "wrong username or password")
    if token is None:
        log.info("handoff.login.refused_role role=%s", account.role)
        return _error(403, NOT_A_CONSOLE_ROLE.format(account.role))
    response = web.json_response({"token": token, "agent": _account_json(account)})
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict",
                        max_age=agents.SESSION_HOURS * 3600, secure=request.secure)
    return response


async def logout(request: web.Request) -> web.Response:
    token = _token(request)
    account = await _viewer(request)
    await request.app[HANDOFF].run(lambda session, now: (
        agents.log_out(session, token, now), agents.touch(session, account.id, None)))
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE)
    return response


def _account_json(account: AgentAccount) -> dict[str, Any]:
    return {"id": account.id, "username": account.username, "name": account.display_name,
            "role": account.role, "branch_id": account.branch_id,
            "products": list(account.products), "languages": list(account.languages)}


async def me(request: web.Request) -> web.Response:
    return web.json_response(_account_json(await _viewer(request)))


async def list_tickets(request: web.Request) -> web.Response:
    """The viewer's queue and their own tickets (a supervisor: every open ticket)."""
    viewer = await _viewer(request)
    views = await request.app[HANDOFF].run(lambda session, now: _visible(session, viewer, now))
    return web.json_response({"tickets": views})


async def show_ticket(request: web.Request) -> web.Response:
    viewer, ticket_id = await _viewer(request), _ticket_id(request)

    def work(session: Session, now: datetime) -> web.Response:
        ticket = tickets.get_ticket(session, ticket_id)
        if ticket is None:
            return _error(404, f"no ticket {ticket_id}")
        if not routing.can_view(viewer.profile(), ticket.facts()):
            return _error(403, f"ticket {ticket_id} is not yours to see")
        view = _view(session, ticket, viewer, now)
        view["events"] = [
            {"from": e.from_status, "to": e.to_status, "tier": e.tier, "actor": e.actor,
             "reason": e.reason, "at": e.created_at.isoformat()}
            for e in tickets.events_of(session, ticket_id)
        ]
        return web.json_response(view)

    return await request.app[HANDOFF].run(work)


UNMASKED_ON_CLAIM = ("name", "phone", "transcript")
"""What the console shows in full to the agent who claimed a ticket (masked to everyone else)."""


def _claimed(session: Session, ticket: tickets.Ticket, viewer: AgentAccount, now: datetime) -> dict[str, Any]:
    """After a claim: the agent sees the customer's personal data in full from now on, which
    the audit trail records (in the claim's transaction); a chat customer is told who joined,
    and the chat is connected at once (a call is connected by its voice session when it
    bridges the audio)."""
    audit.record(session, Actor(viewer.username, viewer.role, viewer.id), AuditAction.UNMASKED_VIEWED,
                 "customer", ticket.customer_id, now, ticket_id=ticket.id, reason="claimed",
                 shown=list(UNMASKED_ON_CLAIM))
    if ticket.channel == "chat":
        messages.post(session, conversation_id=ticket.conversation_id, sender="system",
                      text=AGENT_JOINED.format(name=viewer.display_name), handoff_id=ticket.id,
                      agent_id=viewer.id, now=now, data={"event": "agent_joined"})
        tickets.connect(session, ticket.id, f"agent:{viewer.id}", now)
        ticket = tickets.get_ticket(session, ticket.id) or ticket
    return _view(session, ticket, viewer, now)


async def claim_ticket(request: web.Request) -> web.Response:
    """Claims a ticket: 200 with the unmasked ticket, 409 when someone else has it, 403 when it
    is not in the viewer's queue."""
    viewer, ticket_id = await _viewer(request), _ticket_id(request)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        return _claimed(session, tickets.claim(session, ticket_id, viewer, now), viewer, now)

    try:
        view = await request.app[HANDOFF].run(work)
    except tickets.TicketError as exc:
        return _error(exc.status, str(exc))
    log.info("handoff.claimed", extra={"handoff_id": ticket_id, "agent_id": viewer.id})
    return web.json_response(view)


async def claim_next_ticket(request: web.Request) -> web.Response:
    """Claims the most urgent ticket in the viewer's queue (204 when the queue is empty)."""
    viewer = await _viewer(request)

    def work(session: Session, now: datetime) -> dict[str, Any] | None:
        ticket = tickets.claim_next(session, viewer, now)
        return _claimed(session, ticket, viewer, now) if ticket is not None else None

    view = await request.app[HANDOFF].run(work)
    return web.json_response(view) if view is not None else web.Response(status=204)


async def say_to_customer(request: web.Request) -> web.Response:
    """POST {"text", "client_id"?}: the claiming agent writes to the customer (spoken with the
    bot's voice on a call)."""
    viewer, ticket_id = await _viewer(request), _ticket_id(request)
    body = await _body(request)
    text, client_id = body.get("text"), body.get("client_id")
    if not isinstance(text, str) or not text.strip():
        return _error(400, "text is required")
    if len(text) > messages.MAX_TEXT:
        return _error(413, f"a message has at most {messages.MAX_TEXT} characters")
    if client_id is not None and not isinstance(client_id, str):
        return _error(400, "client_id must be a string")

    def work(session: Session, now: datetime) -> web.Response:
        ticket = tickets.get_ticket(session, ticket_id)
        if ticket is None:
            return _error(404, f"no ticket {ticket_id}")
        if ticket.claimed_by != viewer.id:
            return _error(403, f"ticket {ticket_id} is not yours")
        if ticket.status not in ("claimed", "connected"):
            return _error(409, f"ticket {ticket_id} is {ticket.status}")
        message, _ = messages.post(
            session, conversation_id=ticket.conversation_id, sender="agent", text=text.strip(),
            client_msg_id=client_id, handoff_id=ticket_id, agent_id=viewer.id, now=now,
        )
        return web.json_response(message_view(message, True))

    return await request.app[HANDOFF].run(work)


async def close_ticket(request: web.Request) -> web.Response:
    """POST {"outcome", "note"}: the agent is done; a chat goes back to the bot."""
    viewer, ticket_id = await _viewer(request), _ticket_id(request)
    body = await _body(request)
    outcome, note = body.get("outcome"), body.get("note", "")
    if not isinstance(outcome, str) or not isinstance(note, str):
        return _error(400, "outcome (and an optional note) must be strings")

    def work(session: Session, now: datetime) -> dict[str, Any]:
        ticket = tickets.close(session, ticket_id, viewer, outcome, note, now)
        if ticket.channel == "chat":
            messages.post(session, conversation_id=ticket.conversation_id, sender="system",
                          text=AGENT_LEFT, handoff_id=ticket_id, now=now,
                          data={"event": "agent_left"})
        return _view(session, ticket, viewer, now)

    try:
        view = await request.app[HANDOFF].run(work)
    except tickets.TicketError as exc:
        return _error(exc.status, str(exc))
    return web.json_response(view)


async def supervisor_stats(request: web.Request) -> web.Response:
    viewer = await _viewer(request)
    if not viewer.is_supervisor:
        return _error(403, "supervisors only")
    timezone = request.app[TIMEZONE]
    return web.json_response(
        await request.app[HANDOFF].run(lambda session, now: _stats_json(session, now, timezone))
    )


# ------------------------------------------------------------- websocket
class _ConsoleSocket:
    """One console's live connection: what it shows, and pushes when that changes."""

    def __init__(self, request: web.Request, viewer: AgentAccount, ws: web.WebSocketResponse) -> None:
        self.service = request.app[HANDOFF]
        self.timezone = request.app[TIMEZONE]
        self.viewer = viewer
        self.ws = ws
        self.shown: dict[int, str] = {}  # ticket id -> conversation id
        self.mine: set[int] = set()  # shown tickets this viewer has claimed (unmasked)

    def wants(self, item: Item) -> bool:
        if isinstance(item, tickets.TicketEvent):
            return True
        return item.conversation_id in self.shown.values()

    async def snapshot(self) -> None:
        views = await self.service.run(lambda session, now: _visible(session, self.viewer, now))
        self.shown = {v["id"]: v["conversation_id"] for v in views}
        self.mine = {v["id"] for v in views if v["mine"]}
        await self.ws.send_json({"type": "snapshot", "agent": _account_json(self.viewer), "tickets": views})

    async def push(self, item: Item) -> None:
        if isinstance(item, tickets.TicketEvent):
            await self._push_ticket(item.handoff_id)
            if self.viewer.is_supervisor:
                await self.push_stats()
            return
        ticket_id = next((t for t, c in self.shown.items() if c == item.conversation_id), None)
        if ticket_id is not None:
            await self.ws.send_json({"type": "message", "ticket_id": ticket_id,
                                     "message": message_view(item, ticket_id in self.mine)})

    async def _push_ticket(self, ticket_id: int) -> None:
        def work(session: Session, now: datetime) -> dict[str, Any] | None:
            ticket = tickets.get_ticket(session, ticket_id)
            if ticket is None or not routing.can_view(self.viewer.profile(), ticket.facts()):
                return None
            if ticket.status not in routing.OPEN and ticket.claimed_by != self.viewer.id:
                return None
            return _view(session, ticket, self.viewer, now)

        view = await self.service.run(work)
        if view is not None:
            self.shown[ticket_id] = view["conversation_id"]
            if view["mine"]:
                self.mine.add(ticket_id)
            else:
                self.mine.discard(ticket_id)
            await self.ws.send_json({"type": "ticket", "ticket": view})
        elif self.shown.pop(ticket_id, None) is not None:
            self.mine.discard(ticket_id)
            await self.ws.send_json({"type": "ticket_gone", "id": ticket_id})

    async def push_stats(self) -> None:
        stats = await self.service.run(lambda session, now: _stats_json(session, now, self.timezone))
        await self.ws.send_json({"type": "stats", **stats})

    async def keep_present(self) -> None:
        """Marks the agent online while the console is open (and sends supervisors stats)."""
        elapsed = 0.0
        while True:
            if elapsed <= 0:
                await self.service.run(lambda session, now: agents.touch(session, self.viewer.id, now))
                elapsed = PRESENCE_EVERY_S
            if self.viewer.is_supervisor:
                await self.push_stats()
            await asyncio.sleep(STATS_EVERY_S)
            elapsed -= STATS_EVERY_S


async def agent_socket(request: web.Request) -> web.WebSocketResponse:
    """The console's push channel (see the module docstring). Client frames: ``ping``."""
    viewer = await _viewer(request)
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_WS_MESSAGE)
    await ws.prepare(request)
    console = _ConsoleSocket(request, viewer, ws)
    subscription = request.app[HANDOFF].feed.subscribe(console.wants)
    presence = asyncio.create_task(console.keep_present())

    async def forward() -> None:
        while True:
            await console.push(await subscription.get())

    pusher: asyncio.Task[None] | None = None
    try:
        await console.snapshot()
        pusher = asyncio.create_task(forward())
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            try:
                message = json.loads(frame.data)
            except ValueError:
                await ws.send_json({"type": "error", "message": "frames must be JSON"})
                continue
            if isinstance(message, dict) and message.get("type") == "ping":
                await ws.send_json({"type": "pong"})
            else:
                await ws.send_json({"type": "error", "message": "unknown frame; use the HTTP API for actions"})
    except ConnectionResetError:
        pass
    finally:
        request.app[HANDOFF].feed.unsubscribe(subscription)
        for task in (presence, pusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        with contextlib.suppress(Exception):
            await request.app[HANDOFF].run(
                lambda session, now: agents.touch(session, viewer.id, now - timedelta(hours=1))
            )
    return ws

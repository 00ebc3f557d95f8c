"""The mobile-banking app's pop-up API. The app back end calls it with the customer's app
session token (``core.customer_tokens``, purpose ``app``) as ``Authorization: Bearer``.

- ``GET /api/app/popup`` -> ``{"popup": null}`` or ``{"popup": {"id", "title", "body",
  "chat_url", "expires_at"}}``: the customer's newest pending, unexpired pop-up. Its
  ``chat_url`` (``/chat?t=<chat token>``) opens the chat widget as the same customer. A
  customer the whitelist does not know gets ``null`` like one without a pop-up: the answer
  does not tell who is on the whitelist.
- ``POST /api/app/popups/{id}/events`` with ``{"event": "shown" | "clicked" | "dismissed"}``
  -> ``{"id", "status"}``, committed before the answer. Repeats are harmless
  (:mod:`outbound.popup_rules`). 400 bad id or body, 404 no such pop-up of this customer
  (another customer's too), 409 the event contradicts what is recorded.

A missing, malformed, forged or expired token, or one for another purpose (a chat link's),
is a 401 with ``WWW-Authenticate: Bearer``. Errors are ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.orm import Session

from core import customer_tokens
from handoff.api import HANDOFF
from handoff.staff_api import json_body
from outbound import popup_rules, popups
from outbound.popup_rules import PopupView
from persistence.engine import session_scope

log = logging.getLogger(__name__)
T = TypeVar("T")

_ID = re.compile(r"[1-9][0-9]{0,17}")
MAX_ID = 2**31 - 1  # oc_app_popups.id is a 32-bit integer on PostgreSQL


@dataclass(frozen=True)
class PopupApiConfig:
    """What the pop-up API needs of the installation (filled by ``offercall.web.app``)."""

    secret_key: str
    """``Settings.secret_key``: signs the app's session tokens and the chat links."""
    chat_link_ttl_s: float = 86400
    """How long a pop-up's chat link opens the chat."""

    def __repr__(self) -> str:
        return f"PopupApiConfig(chat_link_ttl_s={self.chat_link_ttl_s})"


POPUP_API = web.AppKey("popup_api", PopupApiConfig)


def add_popup_routes(app: web.Application) -> None:
    app.router.add_get("/api/app/popup", current_popup)
    app.router.add_post("/api/app/popups/{popup_id}/events", report_event)


def _error(kind: type[web.HTTPException], message: str, **extra: Any) -> web.HTTPException:
    return kind(text=json.dumps({"error": message, **extra}, ensure_ascii=False),
                content_type="application/json")


def _unauthorized(message: str, *, token_given: bool) -> web.HTTPException:
    challenge = 'Bearer realm="offercall-app"'
    if token_given:  # RFC 6750: no error code when the request had no token
        challenge += ', error="invalid_token"'
    error = _error(web.HTTPUnauthorized, message)
    error.headers["WWW-Authenticate"] = challenge
    return error


def app_customer(request: web.Request) -> str:
    """The customer id in the request's app session token; a 401 otherwise."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("send the app session token as 'Authorization: Bearer <token>'",
                            token_given=False)
    try:
        return customer_tokens.verify(token.strip(), request.app[POPUP_API].secret_key,
                                      purpose=customer_tokens.APP)
    except customer_tokens.TokenError:
        log.info("outbound.popup.token_refused")
        raise _unauthorized("the app session token is malformed, forged, expired or not an "
                            "app session token", token_given=True) from None


async def _transaction(request: web.Request, work: Callable[[Session, datetime], T]) -> T:
    """``work(session, now)`` in one transaction off the event loop, committed before this
    returns (on the process's database and clock, the handoff service's; unlike its ``run``,
    this does not wake the agents' feed, which pop-ups are nothing to)."""
    service = request.app[HANDOFF]

    def transaction() -> T:
        with session_scope(service.engine) as session:
            return work(session, service.clock())

    return await asyncio.to_thread(transaction)


def chat_url(customer_id: str, config: PopupApiConfig) -> str:
    """The widget's address, signed in as ``customer_id`` (a chat-purpose token)."""
    return customer_tokens.chat_path(customer_id, config.secret_key,
                                     ttl_s=config.chat_link_ttl_s)


def _popup_json(popup: PopupView, config: PopupApiConfig) -> dict[str, Any]:
    return {"id": popup.id, "title": popup.title, "body": popup.body,
            "chat_url": chat_url(popup.customer_id, config),
            "expires_at": popup.expires_at.isoformat()}


async def current_popup(request: web.Request) -> web.Response:
    """``GET /api/app/popup``."""
    customer_id = app_customer(request)
    popup = await _transaction(
        request, lambda session, now: popups.pending_popup(session, customer_id, now))
    if popup is None:
        return web.json_response({"popup": None})
    log.info("outbound.popup.served", extra={"popup_id": popup.id})
    return web.json_response({"popup": _popup_json(popup, request.app[POPUP_API])})


def _popup_id(request: web.Request) -> int:
    raw = request.match_info["popup_id"]
    if not _ID.fullmatch(raw):
        raise _error(web.HTTPBadRequest, "the pop-up id must be a positive integer")
    return int(raw)


async def _event(request: web.Request) -> popup_rules.PopupEvent:
    body = await json_body(request)
    unknown = sorted(set(body) - {"event"})
    if unknown:
        raise _error(web.HTTPBadRequest, f"unknown fields: {', '.join(unknown)}")
    if "event" not in body:
        raise _error(web.HTTPBadRequest, "the body needs an event, e.g. {\"event\": \"shown\"}")
    try:
        return popup_rules.parse_event(body["event"])
    except ValueError as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from None


async def report_event(request: web.Request) -> web.Response:
    """``POST /api/app/popups/{id}/events``."""
    customer_id = app_customer(request)
    popup_id = _popup_id(request)
    event = await _event(request)
    if popup_id > MAX_ID:
        raise _error(web.HTTPNotFound, "no such pop-up")

    def work(session: Session, now: datetime) -> PopupView | popups.PopupError:
        try:
            return popups.record_event(session, popup_id, customer_id, event, now)
        except popups.PopupError as exc:
            return exc  # commits a withdrawal record_event made before refusing

    done = await _transaction(request, work)
    if isinstance(done, popups.PopupNotFound):
        raise _error(web.HTTPNotFound, str(done))
    if isinstance(done, popups.PopupError):
        log.info("outbound.popup.event_refused", extra={"popup_id": popup_id, "event": event})
        raise _error(web.HTTPConflict, str(done))
    log.info("outbound.popup.event",
             extra={"popup_id": popup_id, "event": event, "status": done.status})
    return web.json_response({"id": done.id, "status": done.status})

"""What the SMS gateway calls back: delivery reports (``GET /api/sms/dlr``) and customers'
replies (``GET /api/sms/inbound``), Kannel's way (query parameters, any 2xx is taken).

Both carry the key offercall and its Kannel share (``Settings.sms_key``); a call without it
is refused with 403. Kannel asks again (every 10 s, 30 times) until it gets a 200 or 202, so
a database outage's 503 loses nothing, and a report about a message that is not ours is
answered 200. A reply is stored before the answer, so once Kannel has its 200 nothing
is lost; the answer's body is empty (offercall sends its own replies, tracked like any other
message)."""

from __future__ import annotations

import hmac
import logging
import re

from aiohttp import web
from sqlalchemy.orm import Session

from outbound import sms_messages
from outbound.sms_channel import SmsChannel
from outbound.sms_rules import national_number
from persistence.engine import in_transaction

log = logging.getLogger(__name__)

SMS_CHANNEL = web.AppKey("sms_channel", SmsChannel)
SMS_KEY = web.AppKey("sms_key", str)

_PHONE = re.compile(r"^\+?[0-9]{3,20}$")
_REF = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MAX_INBOUND_CHARS = 1000


def _checked(request: web.Request) -> SmsChannel:
    key = request.app.get(SMS_KEY, "")
    given = request.query.get("key", "")
    if not key or not hmac.compare_digest(given.encode(), key.encode()):
        raise web.HTTPForbidden(text="a gateway call needs the shared key")
    channel = request.app.get(SMS_CHANNEL)
    if channel is None:
        raise web.HTTPServiceUnavailable(text="the SMS channel is off")
    return channel


def _int(request: web.Request, name: str) -> int:
    try:
        return int(request.query[name])
    except (KeyError, ValueError):
        raise web.HTTPBadRequest(text=f"{name} must be a whole number") from None


async def delivery_report(request: web.Request) -> web.Response:
    """``?key&id=<message id>&status=<Kannel's %d>&answer=<%A>`` → 200 with the status."""
    channel = _checked(request)
    message_id, code = _int(request, "id"), _int(request, "status")
    answer = request.query.get("answer", "")
    now = channel.clock()

    def apply(session: Session) -> str | None:
        status = sms_messages.apply_report(session, message_id, code, answer, now)
        return None if status is None else str(status)

    try:
        status = await in_transaction(channel.engine, apply)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    if status is None:  # answered 200 all the same: Kannel would ask again and again
        log.warning("sms.dlr.unknown_message", extra={"message_id": message_id})
        return web.Response(text="unknown message")
    return web.Response(text=status)


async def inbound(request: web.Request) -> web.Response:
    """``?key&from=<%p>&to=<%P>&text=<%a>&ref=<%I>`` → 200 (empty) once the reply is handled;
    ``ref``, Kannel's id of the message, makes its retries of one delivery harmless."""
    channel = _checked(request)
    ref = request.query.get("ref", "").strip() or None
    if ref is not None and not _REF.match(ref):
        raise web.HTTPBadRequest(text="ref is the gateway's message id (at most 64 characters)")
    phone = national_number(request.query.get("from", "").strip())
    text = request.query.get("text", "").strip()
    if not _PHONE.match(phone):
        raise web.HTTPBadRequest(text="from must be a phone number")
    if not text:
        raise web.HTTPBadRequest(text="the reply has no text")
    if len(text) > MAX_INBOUND_CHARS:
        raise web.HTTPBadRequest(text=f"a reply has at most {MAX_INBOUND_CHARS} characters")
    what = await channel.handle_reply(phone, text, gateway_ref=ref)
    return web.Response(text="", headers={"X-Offercall-Reply": what})


def add_sms_routes(app: web.Application) -> None:
    """Registers the gateway's callbacks."""
    app.router.add_get("/api/sms/dlr", delivery_report)
    app.router.add_get("/api/sms/inbound", inbound)

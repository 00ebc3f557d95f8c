"""Websocket media streams: a PBX or cloud telephony platform connects a live call here.

``GET /media/twilio?token=…`` speaks Twilio Media Streams; ``GET /media/pcm?token=…`` the
plain protocol of :class:`voice.transports.serializers.PcmStreamSerializer`. The token
is ``OFFERCALL_MEDIA_TOKEN``, so only the bank's telephony can open calls.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from aiohttp import web

from offercall.voice_calls import new_call_id, run_call
from offercall.web.keys import ENGINE, HTTP, SETTINGS, VOICE
from persistence import store
from persistence.engine import session_scope
from voice.errors import VoiceError
from voice.transports.serializers import SERIALIZERS
from voice.transports.websocket import WebsocketTransport, read_start

log = logging.getLogger(__name__)


async def media_stream(request: web.Request) -> web.StreamResponse:
    """One call over a websocket, from the start message to hang-up or transfer."""
    protocol = request.match_info["protocol"]
    if protocol not in SERIALIZERS:
        raise web.HTTPNotFound(text=f"unknown media protocol {protocol!r}")
    settings = request.app[SETTINGS]
    token = request.query.get("token", "")
    if not hmac.compare_digest(token.encode(), settings.media_token.encode()):
        raise web.HTTPUnauthorized(text="a valid media token is required")
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    serializer = SERIALIZERS[protocol]()
    try:
        start = await read_start(ws, serializer)
    except VoiceError as exc:
        await ws.send_json({"event": "error", "message": str(exc)})
        await ws.close()
        return ws
    engine = request.app[ENGINE]

    def known() -> bool:
        with session_scope(engine) as session:
            return store.get_customer_offer(session, start.customer_id) is not None

    if not await asyncio.to_thread(known):
        await ws.send_json({"event": "error", "message": f"unknown customer {start.customer_id!r}"})
        await ws.close()
        return ws
    transport = WebsocketTransport(ws, serializer, start)
    call_id = new_call_id()
    await transport.notify({"event": "started", "call_id": call_id})
    call = asyncio.create_task(run_call(
        settings, request.app[VOICE], engine, request.app[HTTP],
        customer_id=start.customer_id, transport=transport, call_id=call_id,
    ))
    try:
        result = await asyncio.shield(call)
    except asyncio.CancelledError:
        # aiohttp gives up on a dropped connection; the call still ends and is recorded
        await call
        raise
    log.info("voice.media.call_ended", extra={"call_id": result.call_id, "outcome": result.outcome})
    if not ws.closed:
        await ws.close()
    return ws

"""A call carried over a websocket media stream (Twilio Media Streams or plain PCM)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from voice.errors import TransportError, VoiceError
from voice.events import Answer, InboundEvent, RemoteHangup
from voice.transports.base import Transport
from voice.transports.serializers import MediaSerializer, Outgoing, StreamStart

log = logging.getLogger(__name__)


async def read_start(
    ws: web.WebSocketResponse, serializer: MediaSerializer, timeout_s: float = 10.0
) -> StreamStart:
    """Reads the opening messages until the call is described (or raises VoiceError)."""
    async def opening() -> StreamStart:
        async for message in ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            start = serializer.start(message.data)
            if start is not None:
                return start
        raise TransportError("the stream closed before its start message")

    try:
        return await asyncio.wait_for(opening(), timeout_s)
    except asyncio.TimeoutError:
        raise TransportError(f"no start message within {timeout_s:.0f} s") from None


class WebsocketTransport(Transport):
    """Inbound audio and DTMF from the socket; bot audio and events back to it."""

    def __init__(self, ws: web.WebSocketResponse, serializer: MediaSerializer, start: StreamStart) -> None:
        self.ws = ws
        self.serializer = serializer
        self.start = start
        self.format = start.format
        self.name = f"websocket-{serializer.name}"
        self.bad_messages = 0

    async def connect(self) -> Answer:
        return Answer("answered")

    async def events(self) -> AsyncIterator[InboundEvent]:
        async for message in self.ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                event = self.serializer.inbound(message.data)
            except VoiceError as exc:
                self.bad_messages += 1
                log.warning("voice.media.bad_message", extra={"error": str(exc)})
                await self._send(self.serializer.event({"event": "error", "message": str(exc)}))
                continue
            if event is not None:
                yield event
                if isinstance(event, RemoteHangup):
                    return
        yield RemoteHangup("websocket closed")

    async def _send(self, message: Outgoing | None) -> None:
        if message is None or self.ws.closed:
            return
        try:
            if isinstance(message, bytes):
                await self.ws.send_bytes(message)
            else:
                await self.ws.send_str(message)
        except (ConnectionResetError, RuntimeError):
            log.info("voice.media.send_after_close")

    async def send_audio(self, data: bytes) -> None:
        await self._send(self.serializer.audio(data))

    async def clear_audio(self) -> None:
        await self._send(self.serializer.clear())

    async def notify(self, event: dict[str, Any]) -> None:
        await self._send(self.serializer.event(event))

    async def transfer(self, handoff_id: int | None, reason: str) -> None:
        """Tells the far end; the endpoint closes the socket once the call is recorded."""
        await self._send(self.serializer.event({"event": "transfer", "handoff_id": handoff_id, "reason": reason}))

    async def hangup(self, outcome: str) -> None:
        """Tells the far end; the endpoint closes the socket once the call is recorded."""
        await self._send(self.serializer.event({"event": "hangup", "outcome": outcome}))

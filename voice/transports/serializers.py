"""Wire formats of websocket media streams: one serializer per protocol.

A serializer reads the stream's opening messages into a :class:`StreamStart`, turns
each later message into an inbound event, and writes bot audio and call-control
events in the protocol's own shape. It does no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from voice.audio import MULAW_8K, AudioFormat, parse_format
from voice.errors import AudioFormatError, TransportError
from voice.events import AudioIn, DtmfIn, InboundEvent, RemoteHangup

Outgoing = str | bytes


@dataclass(frozen=True)
class StreamStart:
    """Who the call is for and what audio it carries."""

    customer_id: str
    format: AudioFormat
    call_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _json(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TransportError(f"not JSON: {exc.msg}") from None
    if not isinstance(message, dict):
        raise TransportError("a JSON object was expected")
    return message


class MediaSerializer(ABC):
    """One media-stream protocol."""

    name: str

    @abstractmethod
    def start(self, message: Outgoing) -> StreamStart | None:
        """Reads an opening message; returns the start once the call is described."""

    @abstractmethod
    def inbound(self, message: Outgoing) -> InboundEvent | None:
        """One message after the start to an event (None: nothing for the session)."""

    @abstractmethod
    def audio(self, data: bytes) -> Outgoing:
        """One frame of bot audio."""

    def clear(self) -> Outgoing | None:
        """Tells the far end to drop buffered bot audio."""
        return None

    def event(self, event: dict[str, Any]) -> Outgoing | None:
        """A transcript line or call-control event, where the protocol has room for it."""
        return None


class TwilioSerializer(MediaSerializer):
    """Twilio Media Streams: JSON text messages, base64 μ-law 8 kHz audio.

    ``start.customParameters`` must carry ``customer_id`` (set with ``<Parameter>`` in
    the ``<Stream>`` TwiML). Transfer and hang-up close the stream; Twilio then goes on
    with the TwiML after ``<Connect>`` (e.g. ``<Enqueue>`` into the agents' queue), or the
    platform adapter redirects the call.
    """

    name = "twilio"

    def __init__(self) -> None:
        self.stream_sid = ""
        self._marks = 0

    def start(self, message: Outgoing) -> StreamStart | None:
        if isinstance(message, bytes):
            raise TransportError("Twilio streams send JSON text, not binary frames")
        body = _json(message)
        if body.get("event") == "connected":
            return None
        if body.get("event") != "start":
            raise TransportError(f"expected a 'start' message, got {body.get('event')!r}")
        start = body.get("start") or {}
        self.stream_sid = str(body.get("streamSid") or start.get("streamSid") or "")
        media = start.get("mediaFormat") or {}
        encoding, rate = media.get("encoding", "audio/x-mulaw"), media.get("sampleRate", 8000)
        if encoding != "audio/x-mulaw" or int(rate) != 8000 or int(media.get("channels", 1)) != 1:
            raise AudioFormatError(
                f"unsupported Twilio media format {encoding} {rate} Hz; expected audio/x-mulaw 8000 Hz mono"
            )
        params = start.get("customParameters") or {}
        customer_id = params.get("customer_id")
        if not customer_id:
            raise TransportError("the stream's customParameters carry no customer_id")
        return StreamStart(
            customer_id=str(customer_id), format=MULAW_8K,
            call_id=params.get("call_id") or start.get("callSid"),
            meta={"call_sid": start.get("callSid"), "stream_sid": self.stream_sid},
        )

    def inbound(self, message: Outgoing) -> InboundEvent | None:
        if isinstance(message, bytes):
            raise TransportError("Twilio streams send JSON text, not binary frames")
        body = _json(message)
        kind = body.get("event")
        if kind == "media":
            media = body.get("media") or {}
            if media.get("track", "inbound") != "inbound":
                return None
            try:
                return AudioIn(base64.b64decode(media.get("payload", ""), validate=True))
            except (binascii.Error, ValueError):
                raise TransportError("media payload is not valid base64") from None
        if kind == "dtmf":
            digit = str((body.get("dtmf") or {}).get("digit", ""))
            return DtmfIn(digit) if digit else None
        if kind == "stop":
            return RemoteHangup("stream stopped")
        return None  # mark, connected: nothing for the session

    def audio(self, data: bytes) -> Outgoing:
        return json.dumps({
            "event": "media", "streamSid": self.stream_sid,
            "media": {"payload": base64.b64encode(data).decode("ascii")},
        })

    def clear(self) -> Outgoing | None:
        return json.dumps({"event": "clear", "streamSid": self.stream_sid})

    def event(self, event: dict[str, Any]) -> Outgoing | None:
        if event.get("event") not in ("transfer", "hangup"):
            return None
        self._marks += 1
        name = f"{event['event']}:{event.get('handoff_id') or event.get('outcome') or ''}"
        return json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})


class PcmStreamSerializer(MediaSerializer):
    """The plain protocol: a JSON start message, then binary audio frames both ways.

    Start: ``{"event": "start", "customer_id": "C0001", "format": "pcm16/16000"}``
    (``mulaw/8000``, ``alaw/8000``, ``pcm16/8000|16000|22050``; optional ``call_id``).
    Then binary audio, streamed continuously (silence included), and text messages
    ``{"event": "dtmf", "digit": "1"}`` or ``{"event": "stop"}``. The server sends
    binary bot audio in the same format and JSON events: ``transcript``, ``clear``,
    ``transfer`` (with ``handoff_id``), ``hangup`` (with ``outcome``) and ``error``.
    """

    name = "pcm"

    def start(self, message: Outgoing) -> StreamStart | None:
        if isinstance(message, bytes):
            raise TransportError("send the JSON start message before any audio")
        body = _json(message)
        if body.get("event") != "start":
            raise TransportError(f"expected a 'start' message, got {body.get('event')!r}")
        customer_id = body.get("customer_id")
        if not customer_id:
            raise TransportError("the start message carries no customer_id")
        return StreamStart(
            customer_id=str(customer_id), format=parse_format(str(body.get("format", "pcm16/16000"))),
            call_id=body.get("call_id"),
        )

    def inbound(self, message: Outgoing) -> InboundEvent | None:
        if isinstance(message, bytes):
            return AudioIn(message)
        body = _json(message)
        if body.get("event") == "dtmf":
            digit = str(body.get("digit", ""))
            return DtmfIn(digit) if digit else None
        if body.get("event") == "stop":
            return RemoteHangup("stream stopped")
        raise TransportError(f"unknown message {body.get('event')!r}")

    def audio(self, data: bytes) -> Outgoing:
        return data

    def clear(self) -> Outgoing | None:
        return json.dumps({"event": "clear"})

    def event(self, event: dict[str, Any]) -> Outgoing | None:
        return json.dumps(event, ensure_ascii=False)


SERIALIZERS: dict[str, type[MediaSerializer]] = {"twilio": TwilioSerializer, "pcm": PcmStreamSerializer}

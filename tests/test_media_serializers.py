"""Media-stream wire formats: Twilio JSON and the plain PCM protocol, good and bad messages."""

from __future__ import annotations

import base64
import json

import pytest

from voice.audio import MULAW_8K, PCM_16K
from voice.errors import AudioFormatError, TransportError
from voice.events import AudioIn, DtmfIn, RemoteHangup
from voice.transports.serializers import PcmStreamSerializer, TwilioSerializer


def twilio_start(**media) -> str:
    return json.dumps({
        "event": "start", "streamSid": "MZ1",
        "start": {"callSid": "CA1", "customParameters": {"customer_id": "C0001"},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1, **media}},
    })


def test_twilio_start_media_dtmf_and_stop():
    serializer = TwilioSerializer()
    assert serializer.start(json.dumps({"event": "connected"})) is None
    start = serializer.start(twilio_start())
    assert start.customer_id == "C0001" and start.format == MULAW_8K
    payload = base64.b64encode(b"\xff" * 160).decode()
    assert serializer.inbound(json.dumps({"event": "media", "media": {"payload": payload}})) == AudioIn(b"\xff" * 160)
    assert serializer.inbound(json.dumps({"event": "dtmf", "dtmf": {"digit": "1"}})) == DtmfIn("1")
    assert serializer.inbound(json.dumps({"event": "stop"})) == RemoteHangup("stream stopped")
    assert serializer.inbound(json.dumps({"event": "mark", "mark": {"name": "x"}})) is None


def test_twilio_outbound_messages_carry_the_stream_sid():
    serializer = TwilioSerializer()
    serializer.start(twilio_start())
    media = json.loads(serializer.audio(b"\x00\x01"))
    assert media["streamSid"] == "MZ1" and base64.b64decode(media["media"]["payload"]) == b"\x00\x01"
    assert json.loads(serializer.clear()) == {"event": "clear", "streamSid": "MZ1"}
    assert json.loads(serializer.event({"event": "transfer", "handoff_id": 7}))["mark"]["name"] == "transfer:7"
    assert serializer.event({"event": "transcript", "text": "x"}) is None


def test_twilio_refuses_other_formats_and_missing_customer():
    with pytest.raises(AudioFormatError, match="x-mulaw"):
        TwilioSerializer().start(twilio_start(sampleRate=16000))
    no_customer = json.loads(twilio_start())
    no_customer["start"]["customParameters"] = {}
    with pytest.raises(TransportError, match="customer_id"):
        TwilioSerializer().start(json.dumps(no_customer))


@pytest.mark.parametrize("message", ["{not json", json.dumps([1, 2]), b"\x00\x01"])
def test_twilio_malformed_messages_are_transport_errors(message):
    with pytest.raises(TransportError):
        TwilioSerializer().inbound(message)


def test_twilio_bad_base64_is_a_transport_error():
    with pytest.raises(TransportError, match="base64"):
        TwilioSerializer().inbound(json.dumps({"event": "media", "media": {"payload": "***"}}))


def test_pcm_protocol_start_audio_and_events():
    serializer = PcmStreamSerializer()
    start = serializer.start(json.dumps({"event": "start", "customer_id": "C0002", "format": "pcm16/16000"}))
    assert start.customer_id == "C0002" and start.format == PCM_16K
    assert serializer.inbound(b"\x00\x00" * 320) == AudioIn(b"\x00\x00" * 320)
    assert serializer.inbound(json.dumps({"event": "dtmf", "digit": "0"})) == DtmfIn("0")
    assert serializer.audio(b"abc") == b"abc"
    assert json.loads(serializer.event({"event": "hangup", "outcome": "opt_out"}))["outcome"] == "opt_out"


def test_pcm_protocol_errors_are_clear():
    serializer = PcmStreamSerializer()
    with pytest.raises(TransportError, match="start message"):
        serializer.start(b"\x00\x00")
    with pytest.raises(AudioFormatError, match="sample rate"):
        serializer.start(json.dumps({"event": "start", "customer_id": "C1", "format": "pcm16/44100"}))
    with pytest.raises(TransportError, match="unknown message"):
        serializer.inbound(json.dumps({"event": "dance"}))

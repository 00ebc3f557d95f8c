"""Malformed SIP and RTP from the far end of a live call: each bad packet is dropped with a
warning in the log, and the call goes on (audio keeps flowing, the bot can still hang up)."""

from __future__ import annotations

import asyncio
import logging
import struct

import numpy as np
import pytest

from tests.sip_peers.raw_uas import RawUas
from voice.audio import decode
from voice.events import AudioIn, RemoteHangup
from voice.transports.sip import SipTransport, TrunkConfig
from voice.transports.sip.stack import log_level

TRUNK = TrunkConfig(dial_uri="sip:{number}@127.0.0.1")


def rtp_header(first_byte: int, payload_type: int, seq: int, ts: int) -> bytes:
    return struct.pack("!BBHII", first_byte, payload_type, seq & 0xFFFF, ts & 0xFFFFFFFF, 0x0FFC0001)


def bad_rtp(seq: int, ts: int) -> dict[str, bytes]:
    return {
        "wrong payload type": rtp_header(0x80, 99, seq + 5, ts + 800) + bytes(160),
        "truncated header": rtp_header(0x80, 0, seq + 6, ts + 900)[:10],
        "more CSRCs than bytes": rtp_header(0x8F, 0, seq + 7, ts + 1000) + bytes(12),
        "padding longer than the packet": rtp_header(0xA0, 0, seq + 8, ts + 1100) + bytes(20) + bytes([200]),
        "extension longer than the packet": rtp_header(0x90, 0, seq + 9, ts + 1200) + bytes([0, 0, 0, 50]),
        "not RTP version 2": bytes(172),
        "three bytes": b"\x80\x00\x01",
    }


BAD_SIP = {
    "no Call-ID": (b"BYE sip:offercall@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK1\r\n"
                   b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"),
    "not SIP at all": b"HELLO there, this is not a request line of any protocol at all\r\n\r\n",
    "binary": bytes(range(256)) * 2,
}


async def test_malformed_rtp_and_sip_mid_call_are_dropped_with_a_warning_and_the_call_goes_on(
        sip_stack, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="voice.sip.pjsip")
    with RawUas(tone_hz=440) as far_end:
        transport = SipTransport(sip_stack, far_end.uri, trunk=TRUNK, call_id="malformed")
        assert (await transport.connect()).answered
        events: list = []

        async def collect() -> None:
            async for event in transport.events():
                events.append(event)

        reader = asyncio.create_task(collect())
        await asyncio.sleep(0.6)
        frames_before = len(events)
        seq, ts = far_end.next_seq_ts()
        for packet in bad_rtp(seq, ts).values():
            far_end.send_rtp(packet)
        for packet in BAD_SIP.values():
            far_end.send_sip(packet)
        await asyncio.sleep(1.0)
        assert not reader.done(), "the call survived"
        await transport.hangup("ended")
        await asyncio.wait_for(reader, 5)
        assert far_end.bye.wait(2), "the bot could still end the call with BYE"

    after = [e for e in events[frames_before:] if isinstance(e, AudioIn)]
    assert len(after) >= 40, "audio kept flowing after the bad packets"
    tail = np.frombuffer(decode(b"".join(e.data for e in after[-25:]), "mulaw"), dtype="<i2")
    assert np.abs(tail).max() > 5000, "and it is still the far end's tone, not silence"
    assert not any(isinstance(e, RemoteHangup) for e in events)
    warnings = [r.getMessage() for r in caplog.records if r.name == "voice.sip.pjsip" and r.levelno == logging.WARNING]
    text = "\n".join(warnings)
    assert "Bad RTP pt 99" in text
    assert text.count("Invalid RTP packet length") == 2, text  # more CSRCs, longer extension than sent
    assert "Invalid RTP version" in text
    assert "codec parsed 0 frames" in text  # the padding swallowed the payload
    # Datagrams shorter than an RTP header (the 10- and 3-byte ones) are dropped by PJMEDIA's
    # transport before any parsing, without a log line: they cannot be told from stray UDP.
    assert "Missing required header(s)" in text and "Call-ID" in text
    assert "Dropping" in text and "syntax error" in text


@pytest.mark.parametrize(("message", "expected"), [
    ("Bad RTP pt 99 (expecting 0)", logging.WARNING),
    ("RTP decode error: Invalid RTP version (PJMEDIA_RTP_EINVER)", logging.WARNING),
    ("Error processing packet from 127.0.0.1:5: Missing required header(s)", logging.WARNING),
    ("RTP status: badpt=0, badssrc=0", logging.DEBUG),
    ("Call 0 hanging up: code=200..", logging.DEBUG),
])
def test_pjsip_lines_about_bad_input_become_warnings(message: str, expected: int) -> None:
    assert log_level(5, message) == expected
    assert log_level(1, "Something failed") == logging.ERROR

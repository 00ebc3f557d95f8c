"""The SIP transport against a real phone (baresip on loopback), without the bot: audio both
ways at 8 kHz, DTMF by RFC 4733, hang-ups from either side, ring timeouts and refusals."""

from __future__ import annotations

import asyncio
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.sip_peers.baresip import BaresipPhone, read_wav_mono, write_wav_mono
from voice.audio import decode, encode
from voice.events import AudioIn, DtmfIn, RemoteHangup
from voice.transports.sip import SipTransport, TrunkConfig

pytestmark = pytest.mark.usefixtures("baresip")

TRUNK = TrunkConfig(dial_uri="sip:{number}@127.0.0.1", ring_timeout_s=3)


def tone(hz: float, seconds: float, level: float = 0.3) -> bytes:
    """16-bit PCM at 8 kHz."""
    n = int(8000 * seconds)
    return struct.pack(f"<{n}h", *(int(level * 32767 * math.sin(2 * math.pi * hz * i / 8000)) for i in range(n)))


def dominant_hz(samples: np.ndarray) -> float:
    """The strongest frequency of the audible part of ``samples``."""
    loud = np.flatnonzero(np.abs(samples) > 0.1 * np.abs(samples).max())
    samples = samples[loud[0]:loud[-1] + 1]
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[int(np.argmax(spectrum))])


async def collect(transport: SipTransport, into: list) -> None:
    async for event in transport.events():
        into.append(event)


async def test_audio_flows_both_ways_and_key_presses_arrive(sip_stack, tmp_path: Path) -> None:
    mic = write_wav_mono(tmp_path / "tone.wav", np.frombuffer(tone(440, 2), dtype="<i2"))
    with BaresipPhone(tmp_path, "customer", play_wav=mic) as phone:
        transport = SipTransport(sip_stack, phone.uri, trunk=TRUNK, call_id="audio-test")
        answer = await transport.connect()
        assert answer.answered, answer
        events: list = []
        reader = asyncio.create_task(collect(transport, events))
        await transport.send_audio(encode(tone(1000, 1.5), "mulaw"))
        await asyncio.sleep(2.5)
        await asyncio.to_thread(phone.send_dtmf, "1#")
        await asyncio.sleep(1.5)
        await transport.hangup("ended")
        await asyncio.wait_for(reader, 5)
        phone.wait_event("CALL_CLOSED", timeout_s=5)
        heard_by_phone = read_wav_mono(phone.received_audio()[-1])

    audio = decode(b"".join(e.data for e in events if isinstance(e, AudioIn)), "mulaw")
    assert all(len(e.data) == 160 for e in events if isinstance(e, AudioIn)), "20 ms frames of 8 kHz μ-law"
    samples = np.frombuffer(audio, dtype="<i2").astype(float)
    assert np.abs(samples).max() > 5000
    assert dominant_hz(samples) == pytest.approx(440, abs=10), "the phone's microphone reached the bot"
    assert [e.digit for e in events if isinstance(e, DtmfIn)] == ["1", "#"]
    loud = heard_by_phone[np.abs(heard_by_phone) > 1000]
    assert len(loud) > 8000, "the bot's audio reached the phone"
    assert dominant_hz(heard_by_phone.astype(float)) == pytest.approx(1000, abs=10)
    assert not any(isinstance(e, RemoteHangup) for e in events), "the bot hung up, not the phone"
    stats = transport.stats()
    assert stats["rx_lost"] == 0 and stats["glitches"] == 0, stats


async def test_a_phone_hanging_up_mid_sentence_ends_the_events_with_a_remote_hangup(sip_stack, tmp_path) -> None:
    with BaresipPhone(tmp_path, "customer") as phone:
        transport = SipTransport(sip_stack, phone.uri, trunk=TRUNK, call_id="bye-test")
        assert (await transport.connect()).answered
        events: list = []
        reader = asyncio.create_task(collect(transport, events))
        await transport.send_audio(encode(tone(500, 5), "mulaw"))  # the bot is talking...
        await asyncio.sleep(1)
        await asyncio.to_thread(phone.hangup)  # ...when the customer hangs up
        await asyncio.wait_for(reader, 5)
    assert isinstance(events[-1], RemoteHangup), events[-3:]
    assert "remote hang-up" in events[-1].reason
    await transport.hangup("ended")  # too late: a no-op, not an error


async def test_nobody_answering_within_the_ring_timeout_is_no_answer_and_the_call_is_cancelled(
        sip_stack, tmp_path) -> None:
    with BaresipPhone(tmp_path, "customer", auto_answer=False) as phone:
        transport = SipTransport(sip_stack, phone.uri, trunk=TRUNK, call_id="ring-test")
        answer = await transport.connect()
        phone.wait_event("CALL_CLOSED", timeout_s=5)  # the CANCEL reached the phone
    assert answer.status == "no_answer"
    assert answer.detail["sip_code"] == 487
    assert 2900 <= answer.detail["timings_ms"]["ended"] < 6000
    assert answer.detail["timings_ms"]["provisional"] < 1000, "the phone rang at once"


async def test_a_phone_that_rejects_the_call_is_busy(sip_stack, tmp_path) -> None:
    with BaresipPhone(tmp_path, "customer", auto_answer=False) as phone:
        transport = SipTransport(sip_stack, phone.uri, trunk=TRUNK, call_id="reject-test")
        connecting = asyncio.create_task(transport.connect())
        await asyncio.to_thread(phone.wait_event, "CALL_INCOMING", 5)
        await asyncio.to_thread(phone.hangup)  # rejecting a ringing call sends 486 Busy Here
        answer = await asyncio.wait_for(connecting, 5)
    assert (answer.status, answer.detail["sip_code"]) == ("busy", 486)


async def test_nobody_at_the_address_is_an_invalid_number_and_a_bad_uri_fails_cleanly(sip_stack, tmp_path) -> None:
    with BaresipPhone(tmp_path, "customer") as phone:
        wrong_user = phone.uri.replace("customer@", "nobody@")
        answer = await SipTransport(sip_stack, wrong_user, trunk=TRUNK).connect()
    assert (answer.status, answer.detail["sip_code"]) == ("invalid_number", 404)
    answer = await SipTransport(sip_stack, "sip:bad uri with spaces", trunk=TRUNK).connect()
    assert answer.status == "failed" and "error" in answer.detail


async def test_a_phone_that_only_speaks_a_law_gets_a_law(sip_stack, tmp_path) -> None:
    mic = write_wav_mono(tmp_path / "tone.wav", np.frombuffer(tone(600, 1.5), dtype="<i2"))
    with BaresipPhone(tmp_path, "customer", play_wav=mic, codecs=("pcma",)) as phone:
        transport = SipTransport(sip_stack, phone.uri, trunk=TRUNK, call_id="alaw-test")
        assert (await transport.connect()).answered
        events: list = []
        reader = asyncio.create_task(collect(transport, events))
        await asyncio.sleep(2)
        await transport.hangup("ended")
        await asyncio.wait_for(reader, 5)
        log = phone.log_path.read_text(errors="replace")
    assert "PCMA" in log and "PCMU 8000" not in log, "the call was coded in A-law"
    samples = np.frombuffer(decode(b"".join(e.data for e in events if isinstance(e, AudioIn)), "mulaw"),
                            dtype="<i2").astype(float)
    assert dominant_hz(samples) == pytest.approx(600, abs=10)

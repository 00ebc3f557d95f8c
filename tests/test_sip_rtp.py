"""RTP that arrives the way networks deliver it (late, out of order) and DTMF by SIP INFO, from a
raw peer that controls every packet."""

from __future__ import annotations

import asyncio

import numpy as np

from tests.sip_peers.raw_uas import RawUas
from voice.audio import decode
from voice.events import AudioIn, DtmfIn
from voice.transports.sip import SipTransport, TrunkConfig

TRUNK = TrunkConfig(dial_uri="sip:{number}@127.0.0.1")


async def call_and_collect(sip_stack, far_end: RawUas, seconds: float, during=None) -> tuple[list, dict]:
    transport = SipTransport(sip_stack, far_end.uri, trunk=TRUNK)
    assert (await transport.connect()).answered
    events: list = []

    async def collect() -> None:
        async for event in transport.events():
            events.append(event)

    reader = asyncio.create_task(collect())
    if during is not None:
        await asyncio.sleep(0.5)
        during()
    await asyncio.sleep(seconds)
    await transport.hangup("ended")
    await asyncio.wait_for(reader, 5)
    return events, transport.stats()


def audible_share(frames: list[bytes]) -> float:
    """The share of 20 ms frames that carry the tone (not silence)."""
    loud = [np.abs(np.frombuffer(decode(f, "mulaw"), dtype="<i2")).max() > 3000 for f in frames]
    return sum(loud) / max(1, len(loud))


async def test_audio_that_arrives_late_and_out_of_order_plays_out_whole(sip_stack) -> None:
    with RawUas(tone_hz=440, jitter_ms=60) as far_end:
        events, stats = await call_and_collect(sip_stack, far_end, 4.0)
        reordered = far_end.sent_out_of_order
    frames = [e.data for e in events if isinstance(e, AudioIn)]
    steady = frames[25:-5]  # after the jitter buffer has filled
    assert reordered >= 10, "the peer really sent packets out of order"
    assert stats["rx_lost"] <= 0.01 * stats["rx_packets"], stats  # (a packet overtaken near the end)
    assert stats["rx_discarded"] <= 0.02 * stats["rx_packets"], stats
    assert audible_share(steady) >= 0.98, "the jitter buffer kept the tone continuous"


async def test_dtmf_sent_as_sip_info_arrives_as_a_key_press(sip_stack) -> None:
    with RawUas() as far_end:
        events, _ = await call_and_collect(sip_stack, far_end, 1.0, during=lambda: far_end.send_info_dtmf("5"))
        answered_info = any(m.startswith("SIP/2.0 200") and "INFO" in m for m in far_end.received)
    assert [e.digit for e in events if isinstance(e, DtmfIn)] == ["5"]
    assert answered_info, "the INFO was answered 200 OK"

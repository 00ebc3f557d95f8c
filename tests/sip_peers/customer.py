"""A scripted customer on a real phone: answers each of the bot's turns with the next
recording, once the bot has finished speaking (as a person would)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.sip_peers.baresip import BaresipPhone
from voice.audio import MULAW_8K, decode, write_wav
from voice.transports.sip import SipTransport
from voice.tts import Speaker


async def speech_wav(speaker: Speaker, text: str, path: Path) -> Path:
    """``text`` in the bot's TTS voice as a WAV (16-bit PCM, 8 kHz) for a phone's microphone."""
    return write_wav(path, decode(await speaker.speak(text, MULAW_8K), "mulaw"), 8000)


async def bot_done_speaking(transport: SipTransport, quiet_s: float = 1.5, timeout_s: float = 60) -> None:
    """Returns once the bot has said something and then been quiet for ``quiet_s``."""
    deadline = time.monotonic() + timeout_s
    spoke, last_audio = False, time.monotonic()
    while time.monotonic() < deadline:
        leg = transport.leg
        if leg is not None and leg.port.outgoing:
            spoke, last_audio = True, time.monotonic()
        elif spoke and time.monotonic() - last_audio >= quiet_s:
            return
        del leg
        await asyncio.sleep(0.05)
    raise AssertionError("the bot did not finish speaking")


async def customer_says(phone: BaresipPhone, transport: SipTransport, wavs: list[Path]) -> None:
    """The customer answers each of the bot's turns with the next recording."""
    for wav in wavs:
        await bot_done_speaking(transport)
        await asyncio.to_thread(phone.play, wav)

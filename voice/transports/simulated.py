"""A simulated customer on a simulated phone line, for demos and tests.

The customer follows a script of turns (speech from WAV files or synthesised text,
silences, key presses, hanging up). Like a person, it waits for the bot to finish
speaking before it answers, unless a turn says to talk over the bot. Its audio goes
through the telephone band (8 kHz μ-law) and is streamed in 20 ms frames at real-time
pace, or ``speed`` times faster. It records what it heard.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from voice.audio import (
    FRAME_MS,
    MULAW_8K,
    AudioFormat,
    convert,
    decode,
    frames,
    read_wav,
    rms_dbfs,
    telephone_band,
)
from voice.errors import AudioFormatError
from voice.events import Answer, AudioIn, DtmfIn, InboundEvent, RemoteHangup
from voice.transports.base import Transport
from voice.tts.speaker import Speaker

BOT_VOICE_DB = -45.0


@dataclass(frozen=True)
class SayText:
    """Say ``text`` (synthesised); with ``barge_in_ms``, start that long into the bot's speech."""

    text: str
    barge_in_ms: float | None = None


@dataclass(frozen=True)
class SayWav:
    """Play a WAV file as the customer's speech."""

    path: Path
    barge_in_ms: float | None = None


@dataclass(frozen=True)
class Say:
    """Speech ready to stream: telephone-band audio in the call's format."""

    audio: bytes
    label: str
    barge_in_ms: float | None = None


@dataclass(frozen=True)
class Silence:
    """Say nothing for ``ms`` after the bot's turn."""

    ms: float


@dataclass(frozen=True)
class Press:
    """Press a key (DTMF)."""

    digit: str


@dataclass(frozen=True)
class HangUp:
    """Put the phone down."""


ScriptTurn = SayText | SayWav | Silence | Press | HangUp
Turn = Say | Silence | Press | HangUp

_DIRECTIVE = re.compile(r"^\[(\w+)(?:\s+([\d.]+|[\w*#]))?\]\s*(.*)$")


def parse_script(lines: Iterable[str]) -> list[ScriptTurn]:
    """Reads a customer script, one turn per line.

    ``我是`` speaks text; ``turn.wav`` plays a file; ``[silence 8]`` stays silent 8 s;
    ``[press 1]`` presses a key; ``[hangup]`` hangs up; ``[barge 1.5] 不需要`` says
    the text 1.5 s into the bot's next turn. Blank lines and ``#`` comments are skipped.
    """
    turns: list[ScriptTurn] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _DIRECTIVE.match(line)
        if match is None:
            turns.append(_speech(line, None))
            continue
        word, arg, rest = match.groups()
        try:
            if word == "silence":
                turns.append(Silence(float(arg) * 1000))
            elif word == "press" and arg and arg in "0123456789*#":
                turns.append(Press(arg))
            elif word == "hangup":
                turns.append(HangUp())
            elif word == "barge" and rest:
                turns.append(_speech(rest, float(arg or 1) * 1000))
            else:
                raise ValueError(word)
        except (TypeError, ValueError):
            raise ValueError(f"script line {number}: cannot read {line!r}") from None
    return turns


def _speech(text: str, barge_in_ms: float | None) -> ScriptTurn:
    if text.lower().endswith(".wav"):
        return SayWav(Path(text), barge_in_ms)
    return SayText(text, barge_in_ms)


async def prepare_turns(
    script: Iterable[ScriptTurn], speaker: Speaker, fmt: AudioFormat = MULAW_8K
) -> list[Turn]:
    """Synthesises text turns and loads WAV turns, all through the telephone band."""
    prepared: list[Turn] = []
    for turn in script:
        if isinstance(turn, SayText):
            pcm = await speaker.speak(turn.text, AudioFormat("pcm16", 24000))
            prepared.append(Say(_phone(pcm, 24000, fmt), turn.text, turn.barge_in_ms))
        elif isinstance(turn, SayWav):
            wav = read_wav(turn.path)
            prepared.append(Say(_phone(wav.pcm, wav.sample_rate, fmt), turn.path.name, turn.barge_in_ms))
        else:
            prepared.append(turn)
    return prepared


def _phone(pcm: bytes, rate: int, fmt: AudioFormat) -> bytes:
    line = telephone_band(pcm, rate, MULAW_8K)
    return line if fmt == MULAW_8K else convert(line, MULAW_8K, fmt)


class SimulatedCustomer(Transport):
    """The customer's side of a call, played from a script."""

    name = "simulated"

    def __init__(
        self,
        turns: list[Turn],
        *,
        fmt: AudioFormat = MULAW_8K,
        speed: float = 1.0,
        answer: str = "answered",
        reply_pause_ms: float = 400.0,
        bot_turn_gap_ms: float = 1200.0,
        patience_ms: float = 15000.0,
        linger_ms: float = 20000.0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.format = fmt
        self.turns = turns
        self.speed = speed
        self.answer = answer
        self.reply_pause_ms = reply_pause_ms
        self.bot_turn_gap_ms = bot_turn_gap_ms
        self.patience_ms = patience_ms
        self.linger_ms = linger_ms
        self.heard = bytearray()
        """Everything the bot played, as 16-bit PCM at the call's rate."""
        self.transferred_to: tuple[int | None, str] | None = None
        self.hung_up_by_bot: str | None = None
        self.cleared = 0
        self._queue: asyncio.Queue[InboundEvent | None] = asyncio.Queue(maxsize=8)
        self._now_ms = 0.0
        self._bot_voiced_at: float | None = None
        self._ended = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> Answer:
        """Rings; answers (and starts the script) unless told to be ``busy`` or ``no_answer``."""
        if self.answer != "answered":
            return Answer(self.answer)
        self._task = asyncio.create_task(self._behave(), name="simulated-customer")
        return Answer("answered")

    async def events(self) -> AsyncIterator[InboundEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event

    async def send_audio(self, data: bytes) -> None:
        pcm = decode(data, self.format.encoding)
        self.heard += pcm
        if rms_dbfs(pcm) > BOT_VOICE_DB:
            self._bot_voiced_at = self._now_ms

    async def clear_audio(self) -> None:
        self.cleared += 1

    async def transfer(self, handoff_id: int | None, reason: str) -> None:
        self.transferred_to = (handoff_id, reason)
        await self._end()

    async def hangup(self, outcome: str) -> None:
        self.hung_up_by_bot = outcome
        await self._end()

    async def _end(self) -> None:
        self._ended.set()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._drain()
        self._queue.put_nowait(None)

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    # ------------------------------------------------------------ behaviour
    async def _behave(self) -> None:
        self._started_wall = time.monotonic()
        silence = self.format.silence()
        try:
            for turn in self.turns:
                if isinstance(turn, Say) and turn.barge_in_ms is not None:
                    await self._wait_for_bot_to_start()
                    await self._idle(turn.barge_in_ms)
                else:
                    await self._wait_for_bot_turn()
                    await self._idle(self.reply_pause_ms)
                if isinstance(turn, Say):
                    for frame in frames(turn.audio, self.format):
                        await self._send(frame)
                elif isinstance(turn, Silence):
                    await self._idle(turn.ms)
                elif isinstance(turn, Press):
                    await self._queue.put(DtmfIn(turn.digit))
                    await self._send(silence)
                elif isinstance(turn, HangUp):
                    await self._queue.put(RemoteHangup("customer hung up"))
                    return
            await self._wait_for_bot_turn()
            await self._idle(self.linger_ms)
            await self._queue.put(RemoteHangup("customer hung up after the script"))
        except asyncio.CancelledError:
            return

    async def _send(self, frame: bytes) -> None:
        """Streams one frame at the paced time."""
        self._now_ms += FRAME_MS
        due = self._started_wall + self._now_ms / 1000 / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await self._queue.put(AudioIn(frame))

    async def _idle(self, ms: float) -> None:
        silence = self.format.silence()
        end = self._now_ms + ms
        while self._now_ms < end:
            await self._send(silence)

    async def _wait_for_bot_to_start(self) -> None:
        since = self._now_ms
        silence = self.format.silence()
        while self._now_ms - since < self.patience_ms:
            if self._bot_voiced_at is not None and self._bot_voiced_at >= since:
                return
            await self._send(silence)

    async def _wait_for_bot_turn(self) -> None:
        """Listens until the bot has spoken and then paused, or has said nothing for too long."""
        since = self._now_ms
        silence = self.format.silence()
        while True:
            voiced = self._bot_voiced_at
            heard_reply = voiced is not None and voiced >= since
            if heard_reply and self._now_ms - voiced >= self.bot_turn_gap_ms:
                return
            if not heard_reply and self._now_ms - since >= self.patience_ms:
                return
            await self._send(silence)


def check_turns(turns: list[Turn]) -> None:
    """Rejects empty speech before a call starts."""
    for turn in turns:
        if isinstance(turn, Say) and not turn.audio:
            raise AudioFormatError(f"{turn.label}: no audio to say")

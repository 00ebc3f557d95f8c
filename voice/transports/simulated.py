"""A simulated customer on a simulated phone line, for demos and tests.

The customer follows a script of turns (speech from WAV files or synthesised text,
silences, key presses, hanging up). Like a person, it waits for the bot to finish
speaking before it answers, unless a turn says to talk over the bot. Its audio goes
through the telephone band (8 kHz μ-law) and is streamed in 20 ms frames at real-time
pace, or ``speed`` times faster. It records what it heard.

Two kinds of answer besides a person who waits for the bot to speak first:

* A person who greets: ``greeting`` (or a first script line ``[greet] 喂，你好``) is
  said right after answering; then the script goes on as usual.
* ``answer="voicemail"``: the line answers and plays a machine greeting (``greeting`` or
  the ``[greet]`` line, e.g. :func:`voicemail_greeting`, which speaks
  :func:`voicemail_greeting_text`), a 1000 Hz beep of 0.5 s, then records silently until
  the bot hangs up, or for ``linger_ms`` and then hangs up itself. The script's other
  turns are not played. What the bot sent after the beep, the message it left on the
  voicemail, is in ``recorded``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice.audio import (
    FRAME_MS,
    MULAW_8K,
    PCM_8K,
    AudioFormat,
    convert,
    decode,
    float_to_pcm,
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
GREETING_DELAY_MS = 300.0
"""From answering to the first word of a greeting."""
BEEP_HZ = 1000.0
BEEP_MS = 500
BEEP_LEVEL = 0.3
"""The beep's amplitude (about -10 dBFS)."""
BEEP_GAP_MS = 400.0
"""From the end of the voicemail greeting to the beep."""
VOICEMAIL_GREETING = "您好，您拨打的电话暂时无法接听，请在提示音后留言。"


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
    """Press a key (DTMF); with ``barge_in_ms``, that long into the bot's speech."""

    digit: str
    barge_in_ms: float | None = None


@dataclass(frozen=True)
class HangUp:
    """Put the phone down."""


@dataclass(frozen=True)
class Greet:
    """Say ``speech`` right after answering, before the bot speaks (the first turn only)."""

    speech: SayText | SayWav | Say


ScriptTurn = SayText | SayWav | Silence | Press | HangUp | Greet
Turn = Say | Silence | Press | HangUp | Greet

_DIRECTIVE = re.compile(r"^\[(\w+)(?:\s+([\d.]+|[\w*#]))?\]\s*(.*)$")
_PRESS = re.compile(r"^\[press\s+([0-9*#])\]$")


def parse_script(lines: Iterable[str]) -> list[ScriptTurn]:
    """Reads a customer script, one turn per line.

    ``我是`` speaks text; ``turn.wav`` plays a file; ``[silence 8]`` stays silent 8 s;
    ``[press 1]`` presses a key; ``[hangup]`` hangs up; ``[barge 1.5] 不需要`` says
    the text 1.5 s into the bot's next turn (``[barge 1.5] [press 1]`` presses the key then);
    ``[greet] 喂，你好`` (text or a WAV file), only
    as the first turn, is said on answering, before the bot speaks (with
    ``answer="voicemail"`` it is the machine's prompt). Blank lines and ``#`` comments are
    skipped.
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
        if word == "greet" and turns:
            raise ValueError(f"script line {number}: [greet] must be the first turn")
        try:
            if word == "silence":
                turns.append(Silence(float(arg) * 1000))
            elif word == "press" and arg and arg in "0123456789*#":
                turns.append(Press(arg))
            elif word == "hangup":
                turns.append(HangUp())
            elif word == "barge" and (key := _PRESS.match(rest)):
                turns.append(Press(key.group(1), float(arg or 1) * 1000))
            elif word == "barge" and rest:
                turns.append(_speech(rest, float(arg or 1) * 1000))
            elif word == "greet" and rest and not arg:
                turns.append(Greet(_speech(rest, None)))
            else:
                raise ValueError(word)
        except (TypeError, ValueError):
            raise ValueError(f"script line {number}: cannot read {line!r}") from None
    return turns


def _speech(text: str, barge_in_ms: float | None) -> SayText | SayWav:
    if text.lower().endswith(".wav"):
        return SayWav(Path(text), barge_in_ms)
    return SayText(text, barge_in_ms)


async def prepare_turns(
    script: Iterable[ScriptTurn], speaker: Speaker, fmt: AudioFormat = MULAW_8K
) -> list[Turn]:
    """Synthesises text turns and loads WAV turns, all through the telephone band."""
    prepared: list[Turn] = []
    for turn in script:
        if isinstance(turn, (SayText, SayWav)):
            prepared.append(await _prepare(turn, speaker, fmt))
        elif isinstance(turn, Greet) and not isinstance(turn.speech, Say):
            prepared.append(Greet(await _prepare(turn.speech, speaker, fmt)))
        else:
            prepared.append(turn)
    return prepared


async def _prepare(turn: SayText | SayWav, speaker: Speaker, fmt: AudioFormat) -> Say:
    if isinstance(turn, SayText):
        pcm = await speaker.speak(turn.text, AudioFormat("pcm16", 24000))
        return Say(_phone(pcm, 24000, fmt), turn.text, turn.barge_in_ms)
    wav = read_wav(turn.path)
    return Say(_phone(wav.pcm, wav.sample_rate, fmt), turn.path.name, turn.barge_in_ms)


def voicemail_greeting_text() -> str:
    """A typical voicemail prompt: 您好，您拨打的电话暂时无法接听，请在提示音后留言。"""
    return VOICEMAIL_GREETING


async def voicemail_greeting(
    speaker: Speaker, fmt: AudioFormat = MULAW_8K, text: str = VOICEMAIL_GREETING
) -> Say:
    """The voicemail prompt synthesised and passed through the telephone band."""
    return await _prepare(SayText(text), speaker, fmt)


def beep_audio(fmt: AudioFormat = MULAW_8K, hz: float = BEEP_HZ, ms: int = BEEP_MS) -> bytes:
    """A voicemail beep: a pure tone through the telephone band, in ``fmt``."""
    t = np.arange(8000 * ms // 1000) / 8000
    pcm = float_to_pcm(BEEP_LEVEL * np.sin(2 * np.pi * hz * t))
    return _phone(pcm, PCM_8K.sample_rate, fmt)


def _phone(pcm: bytes, rate: int, fmt: AudioFormat) -> bytes:
    line = telephone_band(pcm, rate, MULAW_8K)
    return line if fmt == MULAW_8K else convert(line, MULAW_8K, fmt)


class SimulatedCustomer(Transport):
    """The customer's side of a call, played from a script.

    ``answer`` is ``answered`` (a person), ``voicemail`` (a machine greeting and a beep;
    needs ``greeting``), or a failure such as ``busy`` or ``no_answer``. ``greeting`` is
    said on answering; a leading :class:`Greet` turn gives it too.
    """

    name = "simulated"

    def __init__(
        self,
        turns: list[Turn],
        *,
        fmt: AudioFormat = MULAW_8K,
        speed: float = 1.0,
        answer: str = "answered",
        greeting: Say | None = None,
        reply_pause_ms: float = 400.0,
        bot_turn_gap_ms: float = 1200.0,
        wall_gap_ms: float = 0.0,
        patience_ms: float = 15000.0,
        linger_ms: float = 20000.0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if turns and isinstance(turns[0], Greet):
            if greeting is not None:
                raise ValueError("two greetings: a [greet] turn and greeting=")
            first, turns = turns[0], turns[1:]
            if not isinstance(first.speech, Say):
                raise ValueError("prepare the [greet] turn first (prepare_turns)")
            greeting = first.speech
        if any(isinstance(turn, Greet) for turn in turns):
            raise ValueError("a greeting can only be the first turn")
        if answer == "voicemail" and greeting is None:
            raise ValueError("a voicemail needs its greeting: greeting=voicemail_greeting(...)")
        self.format = fmt
        self.turns = turns
        self.greeting = greeting
        self.speed = speed
        self.answer = answer
        self.reply_pause_ms = reply_pause_ms
        self.bot_turn_gap_ms = bot_turn_gap_ms
        self.wall_gap_ms = wall_gap_ms
        self.patience_ms = patience_ms
        self.linger_ms = linger_ms
        self.heard = bytearray()
        """Everything the bot played, as 16-bit PCM at the call's rate."""
        self.recorded = bytearray()
        """What the bot played after the voicemail beep: the message it left (16-bit PCM)."""
        self.recording = False
        """True once the voicemail has beeped."""
        self.transferred_to: tuple[int | None, str] | None = None
        self.hung_up_by_bot: str | None = None
        self.cleared = 0
        self._queue: asyncio.Queue[InboundEvent | None] = asyncio.Queue(maxsize=8)
        self._now_ms = 0.0
        self._bot_voiced_at: float | None = None
        self._bot_voiced_wall = 0.0
        self._ended = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> Answer:
        """Rings; answers (and starts the script or the voicemail) unless told to be
        ``busy`` or ``no_answer``. A voicemail answers like a person: ``answered``."""
        if self.answer == "voicemail":
            self._task = asyncio.create_task(self._voicemail(), name="simulated-voicemail")
            return Answer("answered")
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
        if self.recording:
            self.recorded += pcm
        if rms_dbfs(pcm) > BOT_VOICE_DB:
            self._bot_voiced_at = self._now_ms
            self._bot_voiced_wall = time.monotonic()

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
            if self.greeting is not None:
                await self._idle(GREETING_DELAY_MS)
                await self._say(self.greeting.audio)
            for turn in self.turns:
                if isinstance(turn, (Say, Press)) and turn.barge_in_ms is not None:
                    await self._wait_for_bot_to_start()
                    await self._idle(turn.barge_in_ms)
                else:
                    await self._wait_for_bot_turn()
                    await self._idle(self.reply_pause_ms)
                if isinstance(turn, Say):
                    await self._say(turn.audio)
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

    async def _voicemail(self) -> None:
        """Greeting, beep, then silence while recording; hangs up after ``linger_ms``."""
        self._started_wall = time.monotonic()
        assert self.greeting is not None
        try:
            await self._idle(GREETING_DELAY_MS)
            await self._say(self.greeting.audio)
            await self._idle(BEEP_GAP_MS)
            await self._say(beep_audio(self.format))
            self.recording = True
            await self._idle(self.linger_ms)
            await self._queue.put(RemoteHangup("voicemail recording ended"))
        except asyncio.CancelledError:
            return

    async def _say(self, audio: bytes) -> None:
        for frame in frames(audio, self.format):
            await self._send(frame)

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
        """Listens until the bot has spoken and then paused, or has said nothing for too long.

        The pause must last ``bot_turn_gap_ms`` of call audio and ``wall_gap_ms`` of wall-clock
        time: without the second, a call played ``speed`` times faster than real time took a
        bot still synthesising its next clause on a busy machine for one that had finished its
        turn, and talked over it."""
        since = self._now_ms
        silence = self.format.silence()
        while True:
            voiced = self._bot_voiced_at
            heard_reply = voiced is not None and voiced >= since
            paused_wall_ms = (time.monotonic() - self._bot_voiced_wall) * 1000
            if (heard_reply and self._now_ms - voiced >= self.bot_turn_gap_ms
                    and paused_wall_ms >= self.wall_gap_ms):
                return
            if not heard_reply and self._now_ms - since >= self.patience_ms:
                return
            await self._send(silence)


def check_turns(turns: list[Turn]) -> None:
    """Rejects empty speech before a call starts."""
    for turn in turns:
        say = turn.speech if isinstance(turn, Greet) else turn
        if isinstance(say, Say) and not say.audio:
            raise AudioFormatError(f"{say.label}: no audio to say")

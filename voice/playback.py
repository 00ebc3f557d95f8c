"""The bot's voice on a call: turns synthesised clause by clause, played in 20 ms frames paced
by media time, recorded, and cut off at once when the customer barges in.

Media time is how much call audio has passed (:class:`MediaClock`). The customer's audio moves
it, so a call played faster than real time (a simulated customer) behaves exactly like a live
one; the bot's frames go out at most ``lead_ms`` ahead of it, a cushion against jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voice.audio import FRAME_MS, AudioFormat, decode, frames
from voice.events import TranscriptEntry
from voice.recording import CallRecorder
from voice.transports.base import Transport
from voice.tts.speaker import Speaker


class MediaClock:
    """How much call audio has passed, in milliseconds."""

    def __init__(self) -> None:
        self.now_ms = 0.0
        self._moved = asyncio.Event()

    def advance(self, ms: float) -> None:
        """``ms`` more of the call has passed."""
        self.now_ms += ms
        self._moved.set()

    async def wait_until(self, at_ms: float) -> None:
        """Returns once media time has reached ``at_ms``."""
        while self.now_ms < at_ms:
            self._moved.clear()
            await self._moved.wait()

    async def follow_wall_clock(self) -> None:
        """Moves media time with the wall clock, for as long as nothing else can (the line's
        audio is gone but the bot still has something to say)."""
        while True:
            await asyncio.sleep(FRAME_MS / 1000)
            self.advance(FRAME_MS)


@dataclass(frozen=True)
class _Frame:
    generation: int
    entry: TranscriptEntry
    audio: bytes  # wire format
    first_of_turn: bool = False
    clause_done: str | None = None
    """On a clause's last frame: the clause, as spoken."""


@dataclass(frozen=True)
class _EntryDone:
    generation: int
    entry: TranscriptEntry


@dataclass(frozen=True)
class _TurnDone:
    generation: int
    played: asyncio.Future[None]


class Playback:
    """Queues turns for the line and plays them (run :meth:`play` as the call's speak task).

    Hooks tell the call what happened: ``on_started`` when a text's first frame goes out,
    ``on_first_audio`` when a turn's first frame does, ``on_finished`` with the media time a
    turn ended at (not called for a turn that was interrupted).
    """

    def __init__(
        self,
        *,
        transport: Transport,
        speaker: Speaker,
        recorder: CallRecorder,
        clock: MediaClock,
        lead_ms: float,
        pause_between_texts_ms: int,
        on_started: Callable[[TranscriptEntry], Awaitable[None]],
        on_first_audio: Callable[[], None],
        on_finished: Callable[[float], None],
    ) -> None:
        self.transport = transport
        self.speaker = speaker
        self.recorder = recorder
        self.clock = clock
        self.lead_ms = lead_ms
        self.pause_between_texts_ms = pause_between_texts_ms
        self._on_started = on_started
        self._on_first_audio = on_first_audio
        self._on_finished = on_finished
        self._fmt: AudioFormat = transport.format
        self._queue: asyncio.Queue[_Frame | _EntryDone | _TurnDone] = asyncio.Queue()
        self._generation = 0
        self._position_ms = 0.0
        self._playing: TranscriptEntry | None = None
        self._producer: asyncio.Task[None] | None = None
        self.busy = False
        """A turn is queued or playing."""

    def say(self, entries: list[TranscriptEntry]) -> asyncio.Future[None]:
        """Queues a turn (its texts, already in the transcript); the future completes once it
        has played, or was cut off."""
        self._generation += 1
        played: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.busy = bool(entries)
        self._producer = asyncio.create_task(self._produce(self._generation, entries, played))
        return played

    async def interrupt(self) -> bool:
        """Stops the turn playing now and drops the rest of it; False if nothing was playing."""
        if not self.busy:
            return False
        self._generation += 1
        self.busy = False
        if self._producer is not None and not self._producer.done():
            self._producer.cancel()
        if self._playing is not None:
            self._playing.interrupted = True
        self._playing = None
        await self.transport.clear_audio()
        return True

    async def close(self) -> None:
        """Stops synthesising (the call is over)."""
        if self._producer is not None and not self._producer.done():
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._producer

    async def play(self) -> None:
        """The speak task: plays queued frames, paced by media time, until cancelled."""
        while True:
            item = await self._queue.get()
            current = item.generation == self._generation
            if isinstance(item, _EntryDone):
                if current:
                    item.entry.completed, item.entry.played_text = True, None
            elif isinstance(item, _TurnDone):
                if current:
                    self.busy, self._playing = False, None
                    self._on_finished(self.clock.now_ms)
                if not item.played.done():
                    item.played.set_result(None)
            elif current:  # frames of an interrupted turn are never played
                await self._play(item)

    async def _play(self, item: _Frame) -> None:
        await self.clock.wait_until(self._position_ms - self.lead_ms)
        self._position_ms = max(self._position_ms, self.clock.now_ms)
        entry = item.entry
        if entry.end_ms is None and self._playing is not entry:
            entry.start_ms = self._position_ms
            self._playing = entry
            await self._on_started(entry)
        if item.first_of_turn:
            self._on_first_audio()
        await self.transport.send_audio(item.audio)
        self.recorder.add_bot(decode(item.audio, self._fmt.encoding), self._position_ms)
        self._position_ms += FRAME_MS
        entry.end_ms = self._position_ms
        if item.clause_done is not None:
            entry.played_text = (entry.played_text or "") + item.clause_done

    async def _produce(
        self, generation: int, entries: list[TranscriptEntry], played: asyncio.Future[None]
    ) -> None:
        """Synthesises each text clause by clause and queues its frames."""
        first = True
        try:
            for index, entry in enumerate(entries):
                async for said, clause in self.speaker.spoken_clauses(entry.text, self._fmt):
                    if generation != self._generation:
                        return
                    pieces = list(frames(clause, self._fmt))
                    for count, frame in enumerate(pieces, start=1):
                        await self._queue.put(_Frame(generation, entry, frame, first,
                                                     said if count == len(pieces) else None))
                        first = False
                await self._queue.put(_EntryDone(generation, entry))
                if index < len(entries) - 1:
                    pause = self._fmt.silence(self.pause_between_texts_ms)
                    for frame in frames(pause, self._fmt):
                        await self._queue.put(_Frame(generation, entry, frame))
        finally:
            await self._queue.put(_TurnDone(generation, played))

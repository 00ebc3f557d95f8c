"""What call sessions use to speak: speakable text, phrase cache, synthesis off the event loop.

A text is spoken whole (:meth:`Speaker.speak`) or clause by clause
(:meth:`Speaker.clauses`), so a call can start playing the first clause while the next
is synthesised. Concurrent requests for the same audio share one synthesis.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable

from voice.audio import AudioFormat, convert
from voice.tts.base import TtsEngine
from voice.tts.cache import CacheKey, PhraseCache
from zhnorm.speech import speakable

_CLAUSE_END = re.compile(r"(?<=[。！？；，,!?;\n])|(?<=\.)(?!\d)")
_NOT_SPOKEN = re.compile(r"[\s。！？；，、：…,.!?;:]")
MIN_CLAUSE_CHARS = 3


def split_clauses(text: str) -> list[str]:
    """Splits after 。！？；， and , . ! ? ; (keeping the mark), merging clauses of < 3 characters.

    A short clause joins the next one (or the previous one at the end), so 好的，
    does not become a separate, choppy recording.
    """
    clauses: list[str] = []
    carry = ""
    for part in _CLAUSE_END.split(text):
        part = carry + part
        if len(_NOT_SPOKEN.sub("", part)) < MIN_CLAUSE_CHARS:
            carry = part
        else:
            clauses.append(part.strip())
            carry = ""
    if carry.strip():
        if clauses:
            clauses[-1] = (clauses[-1] + carry).strip()
        else:
            clauses.append(carry.strip())
    return clauses


class Speaker:
    """Speaks text in a call's audio format with one engine and an optional phrase cache."""

    def __init__(self, engine: TtsEngine, cache: PhraseCache | None = None) -> None:
        self.engine = engine
        self.cache = cache
        self._pending: dict[CacheKey, asyncio.Task[tuple[bytes, bool]]] = {}

    async def speak(self, text: str, fmt: AudioFormat) -> bytes:
        """The whole text's audio in ``fmt``."""
        audio, _ = await self._audio(speakable(text), fmt)
        return audio

    @staticmethod
    def clause_texts(text: str) -> list[str]:
        """The clauses :meth:`clauses` speaks, as said (numbers in words), in order."""
        return split_clauses(speakable(text))

    async def clauses(self, text: str, fmt: AudioFormat) -> AsyncIterator[bytes]:
        """The text's audio in ``fmt``, one clause at a time; the next clause is prepared ahead."""
        async for _, audio in self.spoken_clauses(text, fmt):
            yield audio

    async def spoken_clauses(self, text: str, fmt: AudioFormat) -> AsyncIterator[tuple[str, bytes]]:
        """Each clause as said and its audio in ``fmt``; the next clause is prepared ahead."""
        parts = self.clause_texts(text)
        upcoming = self._start(parts[0], fmt) if parts else None
        for index, part in enumerate(parts):
            assert upcoming is not None
            audio, _ = await asyncio.shield(upcoming)
            if index + 1 < len(parts):
                upcoming = self._start(parts[index + 1], fmt)
            yield part, audio

    async def warm(self, texts: Iterable[str], fmt: AudioFormat) -> int:
        """Puts every clause of ``texts`` in the cache; returns how many had to be synthesised."""
        fresh = 0
        for text in texts:
            for clause in split_clauses(speakable(text)):
                _, synthesised = await self._audio(clause, fmt)
                fresh += synthesised
        return fresh

    async def _audio(self, text: str, fmt: AudioFormat) -> tuple[bytes, bool]:
        """Audio for already-speakable text, and whether it had to be synthesised."""
        return await asyncio.shield(self._start(text, fmt))

    def _start(self, text: str, fmt: AudioFormat) -> asyncio.Task[tuple[bytes, bool]]:
        """The task producing this audio, shared with any request already under way.

        Shielded awaits let a barged-in call stop waiting while the audio still lands in
        the cache for the next call.
        """
        key = CacheKey(self.engine.name, self.engine.voice, text, fmt)
        loop = asyncio.get_running_loop()
        task = self._pending.get(key)
        if task is None or task.get_loop() is not loop:
            task = loop.create_task(self._produce(key))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._done(key, done))
        return task

    def _done(self, key: CacheKey, task: asyncio.Task[tuple[bytes, bool]]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so an unawaited prefetch's error is not logged

    async def _produce(self, key: CacheKey) -> tuple[bytes, bool]:
        if self.cache is not None:
            audio = self.cache.get(key, memory_only=True)
            if audio is not None:
                return audio, False
        return await asyncio.to_thread(self._render, key)

    def _render(self, key: CacheKey) -> tuple[bytes, bool]:
        """Disk cache, else synthesis and conversion (in a worker thread)."""
        if self.cache is not None:
            audio = self.cache.get(key)
            if audio is not None:
                return audio, False
        pcm = self.engine.synthesize(key.text)
        audio = convert(pcm, self.engine.pcm_format, key.fmt)
        if self.cache is not None:
            self.cache.put(key, audio)
        return audio, True

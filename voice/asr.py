"""Speech recognition with Vosk: one shared model per process, one recogniser per call.

Recognition runs off the event loop (``run_in_executor``); results come out as typed
events with per-word confidences. The end of an utterance is decided by the call
session's own endpointing (see :mod:`voice.turns`), which then asks for the final
result here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from voice.audio import PCM_16K, AudioFormat, StreamConverter, resample
from voice.errors import AsrModelError
from voice.repair import normalise

log = logging.getLogger(__name__)

ASR_FORMAT = PCM_16K
"""The recogniser's input: 16-bit PCM at 16 kHz, the Mandarin model's training rate."""
T = TypeVar("T")
BATCH_BYTES = ASR_FORMAT.sample_rate * 2 // 10
"""100 ms of recogniser audio: what a live call hands Vosk at a time."""
_CALL_EXECUTOR: ThreadPoolExecutor | None = None
_CALL_EXECUTOR_LOCK = threading.Lock()


def call_executor() -> ThreadPoolExecutor:
    """The threads live calls recognise on: their own, so that a long job elsewhere (speech
    synthesis, the database) never makes a call's audio wait in line (each 20 ms frame is a
    short job, and a call that waits falls behind real time)."""
    global _CALL_EXECUTOR
    with _CALL_EXECUTOR_LOCK:
        if _CALL_EXECUTOR is None:
            _CALL_EXECUTOR = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                                thread_name_prefix="asr")
        return _CALL_EXECUTOR


_models: dict[Path, object] = {}
_models_lock = threading.Lock()


def load_model(path: str | Path) -> object:
    """The process's Vosk model for ``path``, loaded once and shared by all calls."""
    resolved = Path(path).expanduser().resolve()
    with _models_lock:
        if resolved not in _models:
            if not (resolved / "am" / "final.mdl").is_file():
                raise AsrModelError(
                    f"no Vosk model at {resolved} (expected am/final.mdl). Set VOSK_MODEL_PATH "
                    "to an unpacked model such as vosk-model-small-cn-0.22 "
                    "(https://alphacephei.com/vosk/models)."
                )
            import vosk

            vosk.SetLogLevel(-1)
            log.info("voice.asr.model_loading", extra={"path": str(resolved)})
            _models[resolved] = vosk.Model(str(resolved))
        return _models[resolved]


@dataclass(frozen=True)
class Word:
    """One recognised word with its time (seconds from the utterance's start) and confidence."""

    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class PartialTranscript:
    """What the recogniser thinks is being said so far."""

    text: str


@dataclass(frozen=True)
class FinalTranscript:
    """The recogniser's final text for one utterance, normalised, with its words."""

    raw: str
    words: tuple[Word, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        """The text without Vosk's spaces between Chinese words."""
        return normalise(self.raw)

    @property
    def confidence(self) -> float | None:
        """The mean word confidence, or None when nothing was recognised."""
        if not self.words:
            return None
        return sum(w.confidence for w in self.words) / len(self.words)


def _words(result: dict) -> list[Word]:
    return [
        Word(w["word"], float(w.get("start", 0.0)), float(w.get("end", 0.0)), float(w.get("conf", 1.0)))
        for w in result.get("result", [])
    ]


class RecognizerPool:
    """Vosk recognisers kept from call to call. A new recogniser decodes its first utterance
    at about half real time while it expands its share of the model's lookahead graph (up to
    0.45 s for 100 ms of audio, measured on the small Mandarin model); a used one is five times
    faster. Live calls therefore take a used one when there is one."""

    def __init__(self, model: object, grammar: str | None = None) -> None:
        self.model = model
        self.grammar = grammar
        """A Vosk grammar (JSON list of phrases) the recognisers are constrained to, or None."""
        self._free: list[Any] = []
        self._lock = threading.Lock()

    @property
    def idle(self) -> int:
        """Recognisers waiting for a call."""
        with self._lock:
            return len(self._free)

    def acquire(self) -> Any:
        """A recogniser ready for a new stream (used if possible, else new)."""
        with self._lock:
            if self._free:
                return self._free.pop()
        import vosk

        if self.grammar is None:
            recognizer = vosk.KaldiRecognizer(self.model, ASR_FORMAT.sample_rate)
        else:
            recognizer = vosk.KaldiRecognizer(self.model, ASR_FORMAT.sample_rate, self.grammar)
        recognizer.SetWords(True)
        return recognizer

    def release(self, recognizer: Any) -> None:
        """Takes a recogniser back after its call, cleared for the next one. ``FinalResult``,
        not ``Reset``: after ``Reset`` Vosk keeps the feature pipeline, so audio of a call cut
        off mid-word (and its speaker adaptation) would open the next caller's first
        utterance; after ``FinalResult`` the next audio starts a new pipeline and decoder,
        while the recogniser keeps its expanded decoding graph (what makes it fast)."""
        recognizer.FinalResult()
        with self._lock:
            self._free.append(recognizer)


_POOLS: dict[tuple[int, str | None], RecognizerPool] = {}
_POOLS_LOCK = threading.Lock()


def recognizer_pool(model: object, grammar: str | None = None) -> RecognizerPool:
    """The pool of recognisers of ``model`` with ``grammar`` (one per loaded model and grammar,
    for the process's life)."""
    with _POOLS_LOCK:
        key = (id(model), grammar)
        pool = _POOLS.get(key)
        if pool is None or pool.model is not model:
            pool = _POOLS[key] = RecognizerPool(model, grammar)
        return pool


class CallRecognizer:
    """A recogniser for one call. Feed audio in the call's format; ask for the final result;
    ``close()`` at the end of the call gives the Vosk recogniser back to the pool."""

    def __init__(
        self, model: object, source: AudioFormat, *, executor: Executor | None = None,
        grammar: str | None = None,
    ) -> None:
        self._pool = recognizer_pool(model, grammar)
        self._recognizer = self._pool.acquire()
        self._last_job: Future[Any] | None = None
        self._converter = StreamConverter(source, ASR_FORMAT)
        self._executor = executor or call_executor()
        self._segments: list[dict] = []
        self._last_partial = ""
        self._pending = b""

    async def accept(self, audio: bytes) -> PartialTranscript | None:
        """Feeds audio; returns a partial transcript when what is heard so far changed. The
        recogniser is handed 100 ms at a time (a partial result per 20 ms frame costs five
        times the work for nothing a caller notices)."""
        self._pending += self._converter.feed(audio)
        if len(self._pending) < BATCH_BYTES:
            return None
        pcm, self._pending = self._pending, b""
        return await self._run(self._accept, pcm)

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        """Runs ``work`` on the recognition threads; one job at a time per recogniser (the
        caller waits for each), and a job outlives a cancelled caller: ``close`` waits for it."""
        job = self._executor.submit(work, *args)
        self._last_job = job
        return await asyncio.wrap_future(job)

    def _accept(self, pcm: bytes) -> PartialTranscript | None:
        if self._recognizer is None:  # the call closed while this audio waited for a thread
            return None
        if self._recognizer.AcceptWaveform(pcm):
            # Vosk found its own pause inside the utterance: keep that piece.
            self._segments.append(json.loads(self._recognizer.Result()))
            partial = ""
        else:
            partial = json.loads(self._recognizer.PartialResult()).get("partial", "")
        heard = " ".join([*(s.get("text", "") for s in self._segments), partial]).strip()
        if heard == self._last_partial:
            return None
        self._last_partial = heard
        return PartialTranscript(normalise(heard))

    async def finish(self) -> FinalTranscript:
        """The final result of the utterance so far; the recogniser is then ready for the next."""
        pcm, self._pending = self._pending, b""
        return await self._run(self._finish, pcm)

    async def close(self) -> None:
        """The call is over: the recogniser goes back to the pool (once), after the job it is
        doing; audio fed after this is dropped."""
        last = self._last_job
        if last is not None and not last.done():
            await asyncio.wait([asyncio.wrap_future(last)])
        recognizer, self._recognizer = self._recognizer, None
        if recognizer is None:
            return
        await self._run(self._pool.release, recognizer)

    def _finish(self, pcm: bytes = b"") -> FinalTranscript:
        if self._recognizer is None:  # the call closed first: nothing more was heard
            return FinalTranscript(raw="", words=())
        if pcm and self._recognizer.AcceptWaveform(pcm):
            self._segments.append(json.loads(self._recognizer.Result()))
        pieces = [*self._segments, json.loads(self._recognizer.FinalResult())]
        self._segments, self._last_partial = [], ""
        raw = " ".join(p.get("text", "") for p in pieces if p.get("text")).strip()
        words = tuple(w for p in pieces for w in _words(p))
        return FinalTranscript(raw=raw, words=words)


def transcribe(model: object, pcm: bytes, sample_rate: int) -> FinalTranscript:
    """Recognises a whole recording at once (blocking; for files, tools and benchmarks)."""
    import vosk

    recognizer = vosk.KaldiRecognizer(model, ASR_FORMAT.sample_rate)
    recognizer.SetWords(True)
    audio = resample(pcm, sample_rate, ASR_FORMAT.sample_rate)
    pieces: list[dict] = []
    step = ASR_FORMAT.sample_rate * 2 // 5  # 200 ms
    for start in range(0, len(audio), step):
        if recognizer.AcceptWaveform(audio[start : start + step]):
            pieces.append(json.loads(recognizer.Result()))
    pieces.append(json.loads(recognizer.FinalResult()))
    raw = " ".join(p.get("text", "") for p in pieces if p.get("text")).strip()
    return FinalTranscript(raw=raw, words=tuple(w for p in pieces for w in _words(p)))


def default_model_path() -> Path:
    """``VOSK_MODEL_PATH``, for tools that run without the offercall settings."""
    return Path(os.environ.get("VOSK_MODEL_PATH", "../shared/models/vosk-model-small-cn-0.22"))

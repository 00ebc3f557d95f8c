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
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from voice.audio import PCM_16K, AudioFormat, StreamConverter, resample
from voice.errors import AsrModelError
from voice.repair import normalise

log = logging.getLogger(__name__)

ASR_FORMAT = PCM_16K
"""The recogniser's input: 16-bit PCM at 16 kHz, the Mandarin model's training rate."""

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


class CallRecognizer:
    """A recogniser for one call. Feed audio in the call's format; ask for the final result."""

    def __init__(
        self, model: object, source: AudioFormat, *, executor: Executor | None = None
    ) -> None:
        import vosk

        self._recognizer = vosk.KaldiRecognizer(model, ASR_FORMAT.sample_rate)
        self._recognizer.SetWords(True)
        self._converter = StreamConverter(source, ASR_FORMAT)
        self._executor = executor
        self._segments: list[dict] = []
        self._last_partial = ""

    async def accept(self, audio: bytes) -> PartialTranscript | None:
        """Feeds audio; returns a partial transcript when what is heard so far changed."""
        pcm = self._converter.feed(audio)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._accept, pcm)

    def _accept(self, pcm: bytes) -> PartialTranscript | None:
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
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._finish)

    def _finish(self) -> FinalTranscript:
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

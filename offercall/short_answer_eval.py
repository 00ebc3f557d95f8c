"""Short answers on the held-out split (``nlu_data/short_answers/held_out.yml``): each is scored
in the context of the question it answers, twice, as the app chat reads it (the NLU alone) and as
a call reads it (the transcript repair for that question first, :func:`voice.repair.repair`).

What matters most is never taking an answer for its opposite: a yes read as a no loses a
customer, a "call me later" read as a yes transfers someone who has no time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.settings import PROJECT_ROOT
from voice.repair import EXPECTED_ANSWERS, repair

SHORT_ANSWERS_PATH = PROJECT_ROOT / "nlu_data" / "short_answers" / "held_out.yml"
MEANS: dict[str, frozenset[str]] = {
    "yes": frozenset({"affirm"}),
    "no": frozenset({"deny", "wrong_person", "not_interested"}),
    "later": frozenset({"busy_callback"}),
    "human": frozenset({"request_handoff"}),
    "stop": frozenset({"opt_out"}),
    "repeat": frozenset({"ask_repeat"}),
}
"""The intents that carry each meaning."""
ALSO_MEANS: dict[tuple[str, str], frozenset[str]] = {
    ("yes_no", "yes"): frozenset({"request_handoff"}),
}
"""More intents that carry a meaning after one kind of question: yes to 需要为您转接客户经理吗
is a request for the human."""
NOT_UNDERSTOOD = frozenset({"nlu_fallback", "out_of_scope", "None"})
"""Intents that make the bot ask again rather than act."""


class ShortAnswerError(ValueError):
    """The short-answer file cannot be read."""


@dataclass(frozen=True)
class ShortAnswer:
    """What a customer said to a kind of question, and what they meant."""

    text: str
    kind: str
    meaning: str

    @property
    def right_intents(self) -> frozenset[str]:
        return MEANS[self.meaning] | ALSO_MEANS.get((self.kind, self.meaning), frozenset())

    def wrong_action(self, intent: str) -> bool:
        """True when ``intent`` carries another meaning: the bot would act on the wrong answer."""
        return intent not in self.right_intents and intent not in NOT_UNDERSTOOD


@dataclass(frozen=True)
class Reading:
    """How one channel read the split."""

    right: int
    total: int
    wrong_actions: list[tuple[ShortAnswer, str]] = field(default_factory=list)
    not_understood: list[tuple[ShortAnswer, str]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0


@dataclass(frozen=True)
class ShortAnswerSummary:
    chat: Reading
    call: Reading


def load_short_answers(path: Path = SHORT_ANSWERS_PATH) -> list[ShortAnswer]:
    """The split: ``{kind: {meaning: [text, ...]}}``, every kind a question kind the calls know."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ShortAnswerError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ShortAnswerError(f"{path}: expected question kinds at the top")
    answers = []
    for kind, meanings in data.items():
        if kind not in EXPECTED_ANSWERS or not isinstance(meanings, dict):
            raise ShortAnswerError(f"{path}: {kind!r} is not a question kind ({', '.join(EXPECTED_ANSWERS)})")
        for meaning, texts in meanings.items():
            if meaning not in MEANS or not isinstance(texts, list):
                raise ShortAnswerError(f"{path}: {kind}.{meaning}: a meaning ({', '.join(MEANS)}) "
                                       "with a list of answers")
            answers += [ShortAnswer(str(text), kind, meaning) for text in texts]
    return answers


def on_a_call(answer: ShortAnswer) -> str:
    """The text the NLU gets on a call: the transcript repaired for the question asked."""
    return repair(answer.text, expect=answer.kind).text


def read(answers: Sequence[ShortAnswer], intents: Sequence[str]) -> Reading:
    """Scores what one channel made of the split (pure)."""
    wrong, unclear, right = [], [], 0
    for answer, intent in zip(answers, intents, strict=True):
        if intent in answer.right_intents:
            right += 1
        elif answer.wrong_action(intent):
            wrong.append((answer, intent))
        else:
            unclear.append((answer, intent))
    return Reading(right, len(answers), wrong, unclear)


def render_markdown(summary: ShortAnswerSummary) -> list[str]:
    """The report's section on short answers."""
    lines = [
        "", "## Short answers in context",
        "",
        f"{summary.chat.total} short answers in `nlu_data/short_answers/held_out.yml` (never trained on, "
        "nor in the repair tables), each scored against the question it answers.",
        "",
        "| read | right | acted on the wrong answer | asked again |",
        "|---|---|---|---|",
    ]
    for name, reading in (("app chat (NLU)", summary.chat), ("call (repair for the question, then NLU)", summary.call)):
        lines.append(f"| {name} | **{reading.accuracy:.3f}** | {len(reading.wrong_actions)} | "
                     f"{len(reading.not_understood)} |")
    misses = [(answer, intent, "wrong") for answer, intent in summary.call.wrong_actions]
    misses += [(answer, intent, "asked again") for answer, intent in summary.call.not_understood]
    if misses:
        lines += ["", "On a call:", "", "| answer | question | meant | read as |", "|---|---|---|---|"]
        lines += [f"| {a.text} | {a.kind} | {a.meaning} | {intent} ({how}) |" for a, intent, how in misses]
    return lines


def evaluate_short_answers(rasa_url: str, token: str, path: Path = SHORT_ANSWERS_PATH) -> ShortAnswerSummary:
    """The split parsed by the Rasa server at ``rasa_url``, as the chat and as a call read it."""
    import asyncio

    from offercall.nlu_eval import intent_names, parse_all

    answers = load_short_answers(path)
    texts = [answer.text for answer in answers] + [on_a_call(answer) for answer in answers]
    intents = intent_names(asyncio.run(parse_all(rasa_url, token, texts)))
    return ShortAnswerSummary(read(answers, intents[: len(answers)]), read(answers, intents[len(answers):]))

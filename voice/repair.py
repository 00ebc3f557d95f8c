"""Transcript repair before NLU: Vosk's spaced, homophone-prone output made readable.

Three steps, each recorded so the transcript keeps both the raw and the repaired text:

1. ``normalise``: remove the spaces Vosk puts between Chinese words.
2. Strong matches: a short answer that sounds like a canonical one (是的, 不是, 不用了,
   转人工 …) becomes that answer; a domain word heard as its homophone (代款 → 贷款) is
   corrected. Matching compares toneless pinyin with rapidfuzz, because recognition
   errors in Mandarin are mostly same-sounding characters.
3. Expected answers: when the recogniser or the NLU is unsure, the text is matched,
   more leniently, against the answers the current question expects.

Besides the free transcript, a call can decode the same audio a second time against a grammar of
the answers the question expects (:func:`answer_grammar`). The small Mandarin model often mishears
a two-syllable answer (是我 as 吃完); decoding constrained to the expected phrases, with ``[unk]``
for anything else, hears it right, and :func:`constrained_answer` accepts only an exact, confident
match, so a sentence outside the grammar never becomes a short answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from zhnorm.sounds import NEGATION_SYLLABLES, sound

_CJK_SPACE = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
_SPACES = re.compile(r"\s+")

CANONICAL_ANSWERS: dict[str, tuple[str, ...]] = {
    "是的": ("是的", "是", "对", "对的", "对对", "是我", "我是", "没错", "是啊", "对啊", "嗯是的",
             "嗯对", "是本人", "我就是", "对是我", "可以", "好的", "行", "需要", "是的我是",
             "是的是我", "对我是", "嗯我是", "是我本人", "对是本人", "好的好的"),
    "不是": ("不是", "不对", "不是我", "不是本人", "你打错了", "打错了"),
    "不用了": ("不用", "不用了", "不需要", "不要", "不要了", "算了", "不用不用", "没兴趣",
               "不用谢谢", "不用了谢谢", "不需要谢谢", "不要了谢谢"),
    "转人工": ("转人工", "人工", "人工服务", "转人工服务", "找人工", "人工客服", "转客服",
               "客户经理", "转客户经理", "帮我转人工", "给我转人工", "好的转人工", "好的帮我转人工"),
    "我要申请": ("我要申请", "我想申请", "我要办", "我想办", "申请", "办理", "我要贷款"),
    "不要再打了": ("不要再打了", "别再打了", "以后别打了", "别打了", "不要再给我打电话"),
    "我在忙": ("我在忙", "在忙", "没空", "我在开车", "正忙着", "我在上班"),
    "再说一遍": ("再说一遍", "你说什么", "没听清", "什么", "再说一次"),
}
"""Canonical short answers and how customers say them."""

EXPECTED_ANSWERS: dict[str, tuple[str, ...]] = {
    "identity": ("是的", "不是", "我在忙", "再说一遍"),
    "yes_no": ("是的", "不用了", "转人工", "我要申请", "我在忙", "再说一遍"),
}
"""What each kind of question expects; the bot names the kind in its ``dtmf_request`` directive."""

DOMAIN_WORDS = (
    "贷款", "利率", "利息", "额度", "人工", "客服", "还款", "手续费", "邮储", "银行", "申请",
    "诈骗", "骗子", "放款", "年化", "授信", "医保", "网点", "客户经理", "抵押", "担保",
)
"""Words worth correcting when heard as a same-sounding wrong character pair."""

GRAMMAR_CONFIDENCE = 0.9
"""Every word of a constrained decode must be this confident for it to count."""
STRONG_SCORE = 88.0
EXPECTED_SCORE = 70.0
SHORT_ANSWER_MAX_CHARS = 8


@dataclass(frozen=True)
class Repair:
    """A transcript before and after repair, and which rule changed it."""

    raw: str
    text: str
    rule: str = "none"
    """none | homophone | canonical | grammar | expected"""

    @property
    def changed(self) -> bool:
        """True when the repaired text differs from the normalised raw text."""
        return self.rule != "none"


def normalise(raw: str) -> str:
    """Removes the spaces Vosk puts between Chinese words and trims the rest."""
    return _SPACES.sub(" ", _CJK_SPACE.sub("", raw)).strip()


def negated(text: str) -> bool:
    """True when ``text`` has a syllable that sounds like a negation (不, 没, 别)."""
    return not NEGATION_SYLLABLES.isdisjoint(sound(text).split())


def _best(text: str, choices: dict[str, tuple[str, ...]], keys: tuple[str, ...]) -> tuple[str, float]:
    heard, heard_negated = sound(text), negated(text)
    best, best_score = "", 0.0
    for canonical in keys:
        for variant in choices[canonical]:
            if negated(variant) != heard_negated:
                continue  # 我不要贷款 is close to 我要贷款 in sound, and its opposite in meaning
            score = 100.0 if variant == text else fuzz.ratio(heard, sound(variant))
            if score > best_score:
                best, best_score = canonical, score
    return best, best_score


def fix_homophones(text: str) -> str:
    """Replaces a same-sounding pair of characters with the domain word it stands for."""
    for word in DOMAIN_WORDS:
        if word in text:
            continue
        target, size = sound(word), len(word)
        for start in range(len(text) - size + 1):
            window = text[start : start + size]
            if sound(window) == target:
                text = text[:start] + word + text[start + size :]
                break
    return text


@lru_cache(maxsize=None)
def answer_phrases(kind: str | None) -> tuple[str, ...]:
    """Every way of saying the answers a question of ``kind`` expects (empty for other kinds)."""
    if kind not in EXPECTED_ANSWERS:
        return ()
    return tuple(sorted({v for canonical in EXPECTED_ANSWERS[kind] for v in CANONICAL_ANSWERS[canonical]}))


@lru_cache(maxsize=None)
def answer_grammar(kind: str | None) -> str | None:
    """A Vosk grammar of the answers ``kind`` expects, one character per word (every common
    character is in the model's vocabulary, not every word), with ``[unk]`` for anything else;
    None when the kind expects nothing in particular."""
    phrases = answer_phrases(kind)
    if not phrases:
        return None
    return json.dumps([" ".join(phrase) for phrase in phrases] + ["[unk]"], ensure_ascii=False)


def constrained_answer(heard: str, confidences: Sequence[float], kind: str | None) -> str | None:
    """The expected phrase a grammar-constrained decode heard (是我): only when it heard exactly
    one of ``kind``'s phrases (no ``[unk]``, no other words) with every word at least
    :data:`GRAMMAR_CONFIDENCE` sure; else None."""
    phrase = normalise(heard)
    if not phrase or not confidences or min(confidences) < GRAMMAR_CONFIDENCE:
        return None
    return phrase if phrase in answer_phrases(kind) else None


def canonical_of(phrase: str) -> str:
    """The canonical answer ``phrase`` is a way of saying (是我 → 是的); else ``phrase``."""
    return next((canonical for canonical, variants in CANONICAL_ANSWERS.items() if phrase in variants), phrase)


def repair(
    raw: str,
    *,
    expect: str | None = None,
    unsure: bool = False,
    constrained: str | None = None,
) -> Repair:
    """Repairs one final transcript.

    ``expect`` names the current question's kind (see :data:`EXPECTED_ANSWERS`);
    ``unsure`` says the recogniser's or the NLU's confidence was low, which allows
    the more lenient match against the expected answers. ``constrained`` is the phrase a
    decode against the question's grammar heard (:func:`constrained_answer`): its canonical
    answer replaces a short transcript of about its length (one character more or less) that is
    no canonical answer itself, unless one of the two is a negation and the other is not.
    """
    text = normalise(raw)
    if not text:
        return Repair(raw, text)
    fixed = fix_homophones(text)
    rule = "homophone" if fixed != text else "none"
    if len(fixed) <= SHORT_ANSWER_MAX_CHARS:
        canonical, score = _best(fixed, CANONICAL_ANSWERS, tuple(CANONICAL_ANSWERS))
        if score >= STRONG_SCORE:
            return Repair(raw, canonical, "canonical" if canonical != fixed else rule)
        if (constrained is not None and abs(len(constrained) - len(fixed)) <= 1
                and negated(constrained) == negated(fixed)):
            return Repair(raw, canonical_of(constrained), "grammar")
        if unsure and expect in EXPECTED_ANSWERS:
            canonical, score = _best(fixed, CANONICAL_ANSWERS, EXPECTED_ANSWERS[expect])
            if score >= EXPECTED_SCORE:
                return Repair(raw, canonical, "expected")
    return Repair(raw, fixed, rule)

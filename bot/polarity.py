"""Yes or no, read from the words themselves: a short answer with no negation in it is never a
no, and one with a negation is never a yes.

The intent classifier generalises from examples and, on two or three characters, sometimes
lands on the opposite answer (正是 read as a no). Negation in Mandarin is lexical (不, 没, 别,
甭, 冇, 唔 …), so a short answer's polarity can be checked against its words, minding the
idioms in which a negation says yes (没问题, 没错, 不错)."""

from __future__ import annotations

import re

from zhnorm.sounds import NEGATION_SYLLABLES, syllables

SHORT_ANSWER_MAX_CHARS = 4
"""Longer utterances carry enough context for the classifier; the check is for short answers."""
YES_INTENTS = frozenset({"affirm"})
NO_INTENTS = frozenset({"deny", "not_interested"})
"""Not ``wrong_person``: 他换号了 and 他是我爸 say "not me" without a negation."""
NEGATIONS = ("不", "没", "别", "甭", "否", "冇", "唔", "莫", "非", "错", "免", "算", "无")
"""Words that make an answer negative (Mandarin, south-western and Cantonese forms)."""
POSITIVE_IDIOMS = ("没问题", "没得问题", "没毛病", "没错", "不错", "错不了", "没事", "无所谓")
"""Negations that say yes (or at least not no)."""
_NOT_WORDS = re.compile(r"[\s\W_]+")


def negative(text: str) -> bool:
    """True when ``text`` says no: it has a negation, or a character that sounds like one,
    outside the idioms that say yes (matched by sound too: 没问提 is 没问题 misheard)."""
    sounds = syllables(text)
    said_yes = [False] * len(text)
    for idiom in POSITIVE_IDIOMS:
        pattern = syllables(idiom)
        for start in range(len(text) - len(pattern) + 1):
            if sounds[start : start + len(pattern)] == pattern:
                said_yes[start : start + len(pattern)] = [True] * len(pattern)
    rest = "".join(char for char, idiom in zip(text, said_yes) if not idiom)
    rest_sounds = {sound for sound, idiom in zip(sounds, said_yes) if not idiom}
    return any(word in rest for word in NEGATIONS) or not NEGATION_SYLLABLES.isdisjoint(rest_sounds)


def polarity_conflict(text: str, intent: str | None) -> bool:
    """True when a short answer was classified as a yes but says no, or as a no but does not."""
    words = _NOT_WORDS.sub("", text)
    if not words or len(words) > SHORT_ANSWER_MAX_CHARS:
        return False
    if intent in YES_INTENTS:
        return negative(words)
    if intent in NO_INTENTS:
        return not negative(words)
    return False

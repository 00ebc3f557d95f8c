"""How Mandarin text sounds, without tones: what a recogniser's homophones share (补 and 不 are
both ``bu``), for matching what was heard against what was meant."""

from __future__ import annotations

from functools import lru_cache

from pypinyin import Style, lazy_pinyin

NEGATION_SYLLABLES = frozenset({"bu", "mei", "bie"})
"""The sounds of 不, 没 and 别: a recogniser hears 不 as 补 or 部, and any character that sounds
like a negation may be one."""


@lru_cache(maxsize=4096)
def sound(text: str) -> str:
    """Toneless pinyin of ``text``, syllables separated by spaces (punctuation dropped)."""
    return " ".join(s for s in lazy_pinyin(text, style=Style.NORMAL, errors="ignore") if s.strip())


def syllables(text: str) -> list[str]:
    """One toneless syllable per character of ``text`` ("" for a space or a mark), aligned with it."""
    return [lazy_pinyin(char, style=Style.NORMAL, errors="ignore")[0] if char.strip() else "" for char in text]

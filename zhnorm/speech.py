"""Text made speakable for a Mandarin voice: digits, percentages and money read as words."""

from __future__ import annotations

import re

from zhnorm.amounts import say_amount
from zhnorm.numerals import say_decimal, say_integer

PERCENT_RE = re.compile(r"(\d+(?:\.\d+)?)\s*[%％]")
MONEY_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(万)?\s*(元|块)")
PHONE_LIKE_RE = re.compile(r"\d{5,}")
NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
DIGIT_NAMES = "零幺二三四五六七八九"


def say_rate(percent: float) -> str:
    """Says an annual rate: 3.6 -> 百分之三点六."""
    return "百分之" + say_decimal(percent)


def speakable(text: str) -> str:
    """Rewrites digits so a TTS voice says them as a person would.

    3.6% -> 百分之三点六, 50000元 -> 五万元, 95580 -> 九五五八零 (digit by digit), 12个月 -> 十二个月.
    """
    text = PERCENT_RE.sub(lambda m: say_rate(float(m.group(1))), text)
    text = MONEY_RE.sub(_say_money, text)
    text = PHONE_LIKE_RE.sub(lambda m: "".join(DIGIT_NAMES[int(d)] for d in m.group(0)), text)
    return NUMBER_RE.sub(_say_number, text)


def _say_money(match: re.Match[str]) -> str:
    value = float(match.group(1)) * (10_000 if match.group(2) else 1)
    return say_amount(value)


def _say_number(match: re.Match[str]) -> str:
    token = match.group(0)
    return say_decimal(float(token)) if "." in token else say_integer(int(token))

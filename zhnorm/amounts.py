"""Money amounts in what customers say (五万, 10万块, 一万五) and how the bot says them."""

from __future__ import annotations

import re

from zhnorm.numerals import NUMERAL_CHARS, parse_numeral, say_integer

_NUM = f"[{re.escape(NUMERAL_CHARS)}]+"
# a numeral followed by a money word, or a bare numeral of at least three digits
AMOUNT_RE = re.compile(
    rf"(?P<num>{_NUM})\s*(?P<unit>块钱|块|元|圆|万块钱|万块|万元)?"
)
MONEY_MARKERS = ("万", "千", "仟", "w", "W", "亿")
VAGUE_MARKERS = ("几", "多", "来")


def parse_amount(text: str) -> int | None:
    """The first money amount in a customer's words, in whole yuan; None if there is none.

    Vague amounts (十几万, 两万多) are None: the bot should not guess money.

    >>> parse_amount("能不能贷10万块"), parse_amount("一万五够了"), parse_amount("能借多少")
    (100000, 15000, None)
    """
    text = re.sub(r"[\s,，]+", "", text)  # ASR puts spaces between words: 一万 五 千
    for match in AMOUNT_RE.finditer(text):
        numeral, unit = match.group("num"), match.group("unit")
        if numeral in ("点", "."):
            continue
        following = text[match.end(): match.end() + 1]
        if following in VAGUE_MARKERS or text[match.start() - 1: match.start()] == "几":
            return None
        value = parse_numeral(numeral.rstrip("点."))
        if value is None or value <= 0:
            continue
        looks_like_money = bool(unit) or any(m in numeral for m in MONEY_MARKERS) or value >= 100
        if following in ("%", "％", "个", "年", "月", "天", "号", "点", "岁", "分", "厘", "期"):
            looks_like_money = False
        if looks_like_money:
            return int(round(value))
    return None


def say_amount(yuan: int | float) -> str:
    """Says an amount of money naturally: 50000 -> 五万元, 20000 -> 两万元, 1500.5 -> 一千五百元五角."""
    whole = int(yuan)
    jiao = int(round((float(yuan) - whole) * 10))
    spoken = ("两" if whole == 2 else say_integer(whole, two_as_liang=True)) + "元"
    if jiao:
        spoken += say_integer(jiao) + "角"
    return spoken

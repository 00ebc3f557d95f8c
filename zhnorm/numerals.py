"""Chinese numerals <-> integers: 一万零五 <-> 10005, 两千五 -> 2500, 3万5 -> 35000."""

from __future__ import annotations

import re

DIGITS = {
    "零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}
DIGITS.update({str(d): d for d in range(10)})
SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
BIG_UNITS = {"万": 10_000, "w": 10_000, "W": 10_000, "亿": 100_000_000}

NUMERAL_CHARS = "".join(DIGITS) + "".join(SMALL_UNITS) + "".join(BIG_UNITS) + "点."
NUMERAL_RE = re.compile(f"[{re.escape(NUMERAL_CHARS)}]+")

CHINESE_DIGITS = "零一二三四五六七八九"


def parse_numeral(text: str) -> float | None:
    """Reads one numeral written in Chinese, Arabic digits or a mix; None if it is not one.

    >>> parse_numeral("一万五"), parse_numeral("3万5"), parse_numeral("1.5万"), parse_numeral("十二")
    (15000, 35000, 15000.0, 12)
    """
    text = text.strip()
    if not text or not NUMERAL_RE.fullmatch(text):
        return None
    try:
        return _parse_with_big_units(text)
    except ValueError:
        return None


def _parse_with_big_units(text: str) -> float:
    total: float = 0
    rest = text
    for unit_char, unit in sorted(_big_units_in(text), key=lambda u: -u[1]):
        head, _, rest = rest.partition(unit_char)
        if not head:
            raise ValueError(f"{unit_char} without a number before it")
        head_value = _parse_below_ten_thousand(head)
        total += head_value * unit
        last_unit = unit
        if rest and _is_plain_digit_run(rest) and len(rest) == 1:
            # 一万五 = 15000, 3万5 = 35000: a lone digit after a big unit is the next place down
            return total + DIGITS[rest] * last_unit // 10
    if rest:
        total += _parse_below_ten_thousand(rest)
    if not text or text[-1] in "点.":
        raise ValueError(text)
    return _tidy(total)


def _big_units_in(text: str) -> list[tuple[str, int]]:
    seen = []
    for char in text:
        if char in BIG_UNITS and char not in {c for c, _ in seen}:
            seen.append((char, BIG_UNITS[char]))
    values = [u for _, u in seen]
    if values != sorted(values, reverse=True) or len({u for u in values}) != len(values):
        raise ValueError("big units out of order")
    return seen


def _is_plain_digit_run(text: str) -> bool:
    return all(c in DIGITS for c in text)


def _parse_below_ten_thousand(text: str) -> float:
    """Parses 三千零五, 两百, 十五, 2500, 3.6, 三点六 (no 万/亿 inside)."""
    if not text:
        raise ValueError("empty")
    for point in ("点", "."):
        if point in text:
            whole, _, frac = text.partition(point)
            if not frac or not _is_plain_digit_run(frac):
                raise ValueError(text)
            whole_value = _parse_below_ten_thousand(whole) if whole else 0
            return whole_value + float("0." + "".join(str(DIGITS[c]) for c in frac))
    if _is_plain_digit_run(text):
        return int("".join(str(DIGITS[c]) for c in text))
    total = 0
    current: int | None = None
    last_unit = 10_000
    for char in text:
        if char in DIGITS:
            if current is not None and DIGITS[char] != 0:
                raise ValueError(text)
            current = DIGITS[char] if DIGITS[char] != 0 else None
        elif char in SMALL_UNITS:
            unit = SMALL_UNITS[char]
            if unit >= last_unit:
                raise ValueError(text)
            total += (1 if current is None and unit == 10 else _require(current, text)) * unit
            current = None
            last_unit = unit
        else:
            raise ValueError(text)
    if current is not None:
        # 两千五 = 2500, 三百五 = 350: a trailing digit right after a unit is the next place down
        if text[-2:-1] and text[-2] in SMALL_UNITS and last_unit > 10:
            current *= last_unit // 10
        total += current
    return total


def _require(value: int | None, text: str) -> int:
    if value is None:
        raise ValueError(text)
    return value


def _tidy(value: float) -> float:
    return int(value) if float(value).is_integer() else value


def say_integer(number: int, *, two_as_liang: bool = False) -> str:
    """Says a whole number the Mandarin way: 10005 -> 一万零五, 120000 -> 十二万.

    With two_as_liang, a leading 2 before 百/千/万/亿 is 两 (两万, 两千), as in money.
    """
    if number < 0:
        return "负" + say_integer(-number, two_as_liang=two_as_liang)
    if number == 0:
        return "零"
    groups = []
    rest = number
    while rest:
        groups.append(rest % 10_000)
        rest //= 10_000
    names = ["", "万", "亿", "万亿"]
    words = ""
    need_zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            need_zero = bool(words)
            continue
        if words and (need_zero or group < 1000):
            words += "零"
        words += _say_group(group) + names[index]
        need_zero = False
    if words.startswith("一十"):
        words = words[1:]
    if two_as_liang:
        words = re.sub(r"^二(?=[百千万亿])", "两", words)
        words = re.sub(r"(?<=[零万亿])二(?=[千万亿])", "两", words)
    return words


def _say_group(group: int) -> str:
    """0 < group < 10000 without a leading 零."""
    places = [(1000, "千"), (100, "百"), (10, "十"), (1, "")]
    words = ""
    zero_pending = False
    for value, name in places:
        digit = group // value % 10
        if digit == 0:
            zero_pending = bool(words)
            continue
        if zero_pending:
            words += "零"
            zero_pending = False
        words += CHINESE_DIGITS[digit] + name
    return words


def say_decimal(number: float, *, max_decimals: int = 2) -> str:
    """Says a decimal: 3.6 -> 三点六, 12.05 -> 十二点零五, 7.0 -> 七."""
    rounded = round(float(number), max_decimals)
    whole = int(abs(rounded))
    frac = f"{abs(rounded):.{max_decimals}f}".split(".")[1].rstrip("0")
    sign = "负" if rounded < 0 else ""
    spoken = sign + say_integer(whole)
    if frac:
        spoken += "点" + "".join(CHINESE_DIGITS[int(d)] for d in frac)
    return spoken

"""Callback times in what customers say (明天下午, 两个小时后, 晚上八点) and how the bot says them.

Pure functions of the text and the current local time, so they are easy to test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from zhnorm.numerals import NUMERAL_CHARS, parse_numeral, say_integer

_NUM = f"[{re.escape(NUMERAL_CHARS)}半]+"

RELATIVE_RE = re.compile(
    rf"(?P<num>{_NUM})\s*(?P<half>个半)?\s*(?:个)?\s*(?P<unit>小时|钟头|钟|分钟|分|天)\s*(?:以后|之后|后|过后)"
)
CLOCK_RE = re.compile(
    # not 慢一点 / 多一点 / 早一点: "a little slower / more / earlier" is not one o'clock
    rf"(?<![慢快多少大小高低宜好声些])(?P<hour>[0-9]{{1,2}}|[{re.escape(NUMERAL_CHARS)}]{{1,3}})\s*(?:点|:|：|时)"
    rf"\s*(?P<minute>半|一刻|三刻|[0-9]{{1,2}}|[{re.escape(NUMERAL_CHARS)}]{{1,3}}(?=分)|)\s*分?"
)
WEEKDAY_RE = re.compile(r"(?P<next>下个?)?(?:周|星期|礼拜)(?P<day>[一二三四五六日天1-7])")

DAY_WORDS = {
    "大后天": 3, "后天": 2, "明天": 1, "明儿": 1, "明日": 1, "明早": 1, "明晚": 1, "明天早上": 1,
    "今天": 0, "今儿": 0, "今晚": 0, "今早": 0, "过两天": 2, "过几天": 3,
}
WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}


@dataclass(frozen=True)
class DayPart:
    words: tuple[str, ...]
    default_hour: int
    default_minute: int
    pm: bool


DAY_PARTS = (
    DayPart(("凌晨",), 6, 0, False),
    DayPart(("早上", "早晨", "上午", "明早", "今早", "一早", "早点"), 10, 0, False),
    DayPart(("中午",), 12, 0, False),
    DayPart(("下午", "午后"), 15, 0, True),
    DayPart(("傍晚", "黄昏"), 18, 0, True),
    DayPart(("晚上", "今晚", "明晚", "夜里", "晚间"), 19, 0, True),
)
DEFAULT_HOUR = 10  # a day without a time of day means the morning


def parse_callback_time(text: str, now: datetime) -> datetime | None:
    """When the customer wants to be called back, or None if the words name no time.

    Vague wishes (晚点, 回头) are None so that the bot asks for a time.

    >>> now = datetime(2026, 11, 22, 10, 0)
    >>> parse_callback_time("明天下午", now), parse_callback_time("两个小时后", now)
    (datetime.datetime(2026, 11, 23, 15, 0), datetime.datetime(2026, 11, 22, 12, 0))
    """
    text = re.sub(r"\s+", "", text)
    relative = _relative(text)
    if relative is not None:
        return (now + relative).replace(second=0, microsecond=0)
    day_offset = _day_offset(text, now)
    part = _day_part(text)
    clock = _clock(text)
    if day_offset is None and part is None and clock is None:
        return None
    hour, minute = _hour_minute(part, clock, text)
    day = now.date() + timedelta(days=day_offset or 0)
    moment = datetime.combine(day, datetime.min.time()).replace(hour=hour, minute=minute)
    moment = moment.replace(tzinfo=now.tzinfo)
    if moment <= now and day_offset is None:
        if clock is not None and part is None and hour < 12 and moment + timedelta(hours=12) > now:
            moment += timedelta(hours=12)  # 八点 said at 10:00 means tonight
        else:
            moment += timedelta(days=1)
    return moment if moment > now else None


def _relative(text: str) -> timedelta | None:
    match = RELATIVE_RE.search(text)
    if not match:
        return None
    raw = match.group("num")
    amount = 0.5 if raw == "半" else parse_numeral(raw.replace("半", ""))
    if amount is None:
        return None
    if match.group("half") or (raw.endswith("半") and raw != "半"):
        amount += 0.5
    unit = match.group("unit")
    if unit in ("分钟", "分"):
        return timedelta(minutes=amount)
    if unit == "天":
        return timedelta(days=amount)
    return timedelta(hours=amount)


def _day_offset(text: str, now: datetime) -> int | None:
    weekday = WEEKDAY_RE.search(text)
    if weekday:
        raw = weekday.group("day")
        target = WEEKDAYS.get(raw, int(raw) - 1 if raw.isdigit() else 0)
        if weekday.group("next"):
            return 7 - now.weekday() + target  # 下周三: Wednesday of next calendar week
        return (target - now.weekday()) % 7 or 7
    if "周末" in text:
        return (5 - now.weekday()) % 7 or 7
    for word in sorted(DAY_WORDS, key=len, reverse=True):
        if word in text:
            return DAY_WORDS[word]
    return None


def _day_part(text: str) -> DayPart | None:
    for part in DAY_PARTS:
        if any(word in text for word in part.words):
            return part
    return None


def _clock(text: str) -> tuple[int, int] | None:
    for match in CLOCK_RE.finditer(text):
        if match.group("hour") == "一" and text[match.start() - 1: match.start()] in ("早", "晚"):
            continue  # 晚一点 is "a bit later", not one o'clock
        hour = parse_numeral(match.group("hour"))
        if hour is None or not float(hour).is_integer() or not 0 <= hour <= 24:
            continue
        minute_word = match.group("minute")
        minute = {"半": 30, "一刻": 15, "三刻": 45, "": 0}.get(minute_word)
        if minute is None:
            parsed = parse_numeral(minute_word)
            if parsed is None or not 0 <= parsed < 60:
                continue
            minute = int(parsed)
        return int(hour), minute
    return None


def _hour_minute(part: DayPart | None, clock: tuple[int, int] | None, text: str) -> tuple[int, int]:
    if clock is None:
        if part is None:
            return DEFAULT_HOUR, 0
        return part.default_hour, part.default_minute
    hour, minute = clock
    if part is not None and part.pm and hour < 12:
        hour += 12
    elif part is None and 1 <= hour <= 6:
        hour += 12  # nobody asks for a call at three in the night: 三点 is 15:00
    return hour % 24, minute


def say_time(moment: datetime, now: datetime) -> str:
    """Says a callback time relative to now: 明天下午三点, 今天晚上八点半, 11月25日上午十点."""
    days = (moment.date() - now.date()).days
    day = {0: "今天", 1: "明天", 2: "后天"}.get(days, f"{moment.month}月{moment.day}日")
    hour = moment.hour
    if hour < 6:
        part = "凌晨"
    elif hour < 12:
        part = "上午"
    elif hour < 13:
        part = "中午"
    elif hour < 18:
        part = "下午"
    else:
        part = "晚上"
    twelve = hour if hour <= 12 else hour - 12
    spoken_hour = "两" if twelve == 2 else say_integer(twelve)
    if moment.minute == 0:
        minutes = ""
    elif moment.minute == 30:
        minutes = "半"
    else:
        minutes = ("零" if moment.minute < 10 else "") + say_integer(moment.minute) + "分"
    return f"{day}{part}{spoken_hour}点{minutes}"

"""Amounts, numerals and callback times: what customers say in, what the bot says out."""

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhnorm import (
    parse_amount,
    parse_callback_time,
    parse_numeral,
    say_amount,
    say_integer,
    say_rate,
    say_time,
    speakable,
)

# Sunday 22 November 2026, 10:00 local time
NOW = datetime(2026, 11, 22, 10, 0)


@pytest.mark.parametrize(
    ("spoken", "value"),
    [
        ("五万", 50000), ("10万", 100000), ("一万五", 15000), ("3万5", 35000), ("1.5万", 15000),
        ("两千五", 2500), ("一万零五", 10005), ("十五", 15), ("一百一", 110), ("三点六", 3.6),
        ("一亿两千万", 120_000_000), ("二十万", 200_000), ("5w", 50000),
    ],
)
def test_numerals_are_read_as_a_mandarin_speaker_means_them(spoken, value):
    assert parse_numeral(spoken) == value


@pytest.mark.parametrize("junk", ["", "万", "五点", "十十", "借钱", "三百万千"])
def test_things_that_are_not_numerals_are_rejected(junk):
    assert parse_numeral(junk) is None


@pytest.mark.parametrize(
    ("utterance", "yuan"),
    [
        ("能不能贷10万块", 100000), ("一万五够了", 15000), ("借五万", 50000), ("三万块钱", 30000),
        ("我想借八千", 8000), ("能贷二十万吗", 200000), ("我要借5w", 50000), ("两万元行不行", 20000),
        ("贷款 一万 五 千", 15000),  # recogniser output has spaces between words
    ],
)
def test_amounts_in_questions_are_normalised_to_yuan(utterance, yuan):
    assert parse_amount(utterance) == yuan


@pytest.mark.parametrize("utterance", ["能借多少", "十几万", "两万多", "利率3.6%", "借12个月", "三年期"])
def test_vague_or_non_money_numbers_are_not_amounts(utterance):
    assert parse_amount(utterance) is None


@pytest.mark.parametrize(
    ("yuan", "spoken"),
    [(50000, "五万元"), (20000, "两万元"), (2000, "两千元"), (10005, "一万零五元"), (120000, "十二万元"),
     (22000, "两万两千元"), (1_000_000, "一百万元"), (2, "两元"), (1500.5, "一千五百元五角")],
)
def test_amounts_are_spoken_naturally(yuan, spoken):
    assert say_amount(yuan) == spoken


@given(st.integers(min_value=1, max_value=10**11))
def test_any_whole_number_survives_saying_and_reading_back(number):
    assert parse_numeral(say_integer(number)) == number
    assert parse_numeral(say_integer(number, two_as_liang=True)) == number


@given(st.integers(min_value=1, max_value=10**9))
def test_any_spoken_amount_is_understood_back(yuan):
    assert parse_amount(say_amount(yuan)) == yuan


def test_rates_and_digits_become_words_for_the_voice():
    assert say_rate(3.6) == "百分之三点六"
    assert speakable("年化利率3.6%到7.2%，额度50000元，期限12个月，请拨打95580") == (
        "年化利率百分之三点六到百分之七点二，额度五万元，期限十二个月，请拨打九五五八零"
    )


@pytest.mark.parametrize(
    ("utterance", "expected"),
    [
        ("明天下午", datetime(2026, 11, 23, 15, 0)),
        ("两个小时后", datetime(2026, 11, 22, 12, 0)),
        ("晚上八点", datetime(2026, 11, 22, 20, 0)),
        ("今晚七点半", datetime(2026, 11, 22, 19, 30)),
        ("后天上午十点", datetime(2026, 11, 24, 10, 0)),
        ("半小时以后", datetime(2026, 11, 22, 10, 30)),
        ("一个半小时后", datetime(2026, 11, 22, 11, 30)),
        ("一个钟头后再打", datetime(2026, 11, 22, 11, 0)),
        ("10分钟后", datetime(2026, 11, 22, 10, 10)),
        ("下午3点20", datetime(2026, 11, 22, 15, 20)),
        ("三点", datetime(2026, 11, 22, 15, 0)),
        ("八点", datetime(2026, 11, 22, 20, 0)),
        ("明早", datetime(2026, 11, 23, 10, 0)),
        ("周六上午", datetime(2026, 11, 28, 10, 0)),
        ("星期三下午两点", datetime(2026, 11, 25, 14, 0)),
        ("过两天", datetime(2026, 11, 24, 10, 0)),
        ("20:30", datetime(2026, 11, 22, 20, 30)),
        ("我在开车 明天晚上8点再打吧", datetime(2026, 11, 23, 20, 0)),
    ],
)
def test_callback_times_are_normalised_to_a_datetime(utterance, expected):
    assert parse_callback_time(utterance, NOW) == expected


def test_a_time_of_day_already_past_means_tomorrow():
    evening = datetime(2026, 11, 22, 17, 0)
    assert parse_callback_time("上午", evening) == datetime(2026, 11, 23, 10, 0)


@pytest.mark.parametrize("utterance", ["晚点", "回头再说", "我在开车", "现在不方便", "说慢一点", "晚一点吧"])
def test_vague_wishes_have_no_time_so_the_bot_asks(utterance):
    assert parse_callback_time(utterance, NOW) is None


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
       st.integers(min_value=1, max_value=12), st.sampled_from(["小时", "个小时", "钟头", "个钟头"]))
def test_relative_times_are_always_in_the_future_by_exactly_that_much(now, hours, unit):
    spoken = say_integer(hours).replace("二", "两") if hours == 2 else say_integer(hours)
    moment = parse_callback_time(f"{spoken}{unit}后", now)
    assert moment == (now + timedelta(hours=hours)).replace(second=0, microsecond=0)


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
       st.sampled_from(["明天下午", "晚上八点", "后天", "周五上午", "下午三点半", "中午"]))
def test_named_times_are_always_after_now_and_within_a_week(now, utterance):
    moment = parse_callback_time(utterance, now)
    assert moment is not None
    assert now < moment <= now + timedelta(days=8)


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
       st.integers(min_value=0, max_value=6 * 24 * 4))
def test_a_spoken_callback_time_is_understood_back(now, quarter_hours):
    moment = (now + timedelta(minutes=15 * quarter_hours + 15)).replace(second=0, microsecond=0)
    moment = moment.replace(minute=moment.minute // 30 * 30)
    if moment <= now or (moment.date() - now.date()).days > 2:
        return
    assert parse_callback_time(say_time(moment, now), now) == moment

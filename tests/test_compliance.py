"""Compliance rules: calling windows (hours, weekdays, holidays, zones, DST), contact caps and
the dial / wait / skip decision. These are a bank's rules, so boundaries are pinned exactly."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outbound.compliance import (
    SEARCH_DAYS,
    CallingWindow,
    ContactPolicy,
    DialDecision,
    DialFacts,
    NoCallingWindow,
    decide_dial,
    in_window,
    next_allowed_by_caps,
    next_window_start,
)

UTC = timezone.utc
SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
MONDAY = date(2025, 6, 2)  # a Monday
NATIONAL_DAY = frozenset(date(2025, 10, d) for d in range(1, 8))  # 国庆 2025-10-01 .. 10-07
WORKDAYS = frozenset(range(5))
DEFAULT = CallingWindow()
ALL_DAY = CallingWindow(start=time(0, 0), end=time(0, 0))


def sh(day: date, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=SH)


def in_zones(instant: datetime) -> list[datetime]:
    """The same instant written in UTC, New York and Shanghai."""
    return [instant.astimezone(zone) for zone in (UTC, NY, SH)]


# --- CallingWindow ------------------------------------------------------------------------


def test_default_window_is_nine_to_eight_every_day_in_shanghai():
    assert (DEFAULT.start, DEFAULT.end, DEFAULT.timezone) == (time(9), time(20), "Asia/Shanghai")
    assert DEFAULT.weekdays == frozenset(range(7)) and DEFAULT.holidays == frozenset()


@pytest.mark.parametrize(
    "start, end", [(time(10), time(9)), (time(9), time(9)), (time(20), time(8))]
)
def test_window_must_start_before_it_ends(start, end):
    with pytest.raises(ValueError, match="must be before end"):
        CallingWindow(start=start, end=end)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd", "Asia/shanghai "])
def test_unknown_time_zone_is_rejected_with_its_name(zone):
    with pytest.raises(ValueError, match="not a known IANA time zone"):
        CallingWindow(timezone=zone)


@pytest.mark.parametrize(
    "fields",
    [
        {"weekdays": frozenset({7})},
        {"weekdays": frozenset({-1})},
        {"holidays": frozenset({datetime(2025, 10, 1, 0, 0)})},
        {"holidays": frozenset({"2025-10-01"})},
        {"start": time(9, tzinfo=UTC)},
        {"end": "20:00"},
    ],
)
def test_bad_window_fields_are_rejected(fields):
    with pytest.raises(ValueError):
        CallingWindow(**fields)


def test_sets_are_frozen_so_windows_stay_hashable():
    window = CallingWindow(holidays={date(2025, 10, 1)}, weekdays={0, 1})
    assert isinstance(window.holidays, frozenset) and isinstance(window.weekdays, frozenset)
    assert hash(window) == hash(CallingWindow(holidays={date(2025, 10, 1)}, weekdays={1, 0}))


# --- in_window ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "clock, inside",
    [
        (time(0, 0), False),
        (time(8, 59, 59), False),
        (time(8, 59, 59, 999999), False),
        (time(9, 0), True),
        (time(12, 0), True),
        (time(19, 59, 59), True),
        (time(19, 59, 59, 999999), True),
        (time(20, 0), False),
        (time(23, 59, 59), False),
    ],
)
def test_hours_include_the_start_and_exclude_the_end(clock, inside):
    at = datetime.combine(MONDAY, clock, tzinfo=SH)
    assert in_window(DEFAULT, at) is inside
    for same in in_zones(at):
        assert in_window(DEFAULT, same) is inside


@pytest.mark.parametrize(
    "utc_clock, inside",
    [(time(0, 59, 59), False), (time(1, 0), True), (time(11, 59, 59), True), (time(12, 0), False)],
)
def test_window_is_read_in_its_own_zone_whatever_zone_the_instant_comes_in(utc_clock, inside):
    # 01:00 UTC is 09:00 in Shanghai; 12:00 UTC is 20:00 there (08:00 / 21:00 the evening
    # before in New York, which observes summer time in June).
    at = datetime.combine(MONDAY, utc_clock, tzinfo=UTC)
    assert [in_window(DEFAULT, same) for same in in_zones(at)] == [inside] * 3


def test_end_at_midnight_means_end_of_day():
    evening = CallingWindow(start=time(18), end=time(0, 0))
    assert in_window(evening, sh(MONDAY, 23, 59, 59, 999999))
    assert not in_window(evening, sh(MONDAY + timedelta(days=1), 0, 0))
    assert not in_window(evening, sh(MONDAY, 17, 59, 59))
    assert in_window(ALL_DAY, sh(MONDAY, 0, 0)) and in_window(ALL_DAY, sh(MONDAY, 23, 59, 59))


def test_holiday_closes_the_whole_local_day_only():
    window = CallingWindow(holidays=NATIONAL_DAY)
    assert not in_window(window, sh(date(2025, 10, 1), 10))
    assert not in_window(window, sh(date(2025, 10, 7), 19))
    assert in_window(window, sh(date(2025, 9, 30), 19, 59))
    assert in_window(window, sh(date(2025, 10, 8), 9))


def test_holiday_is_a_local_date_not_a_utc_date():
    window = CallingWindow(start=time(0), end=time(0), holidays=frozenset({date(2025, 10, 1)}))
    late_utc = datetime(2025, 9, 30, 16, 30, tzinfo=UTC)  # Oct 1 00:30 in Shanghai
    assert not in_window(window, late_utc)
    assert in_window(window, datetime(2025, 9, 30, 15, 59, 59, tzinfo=UTC))  # Sep 30 23:59:59


@pytest.mark.parametrize("offset, inside", [(0, True), (4, True), (5, False), (6, False)])
def test_only_listed_weekdays_are_calling_days(offset, inside):
    window = CallingWindow(weekdays=WORKDAYS)
    assert in_window(window, sh(MONDAY + timedelta(days=offset), 10)) is inside


def test_repeated_fall_back_hour_is_inside_on_both_passes():
    window = CallingWindow(start=time(1), end=time(2), timezone="America/New_York")
    first = datetime(2025, 11, 2, 5, 15, tzinfo=UTC)  # 01:15 EDT
    second = datetime(2025, 11, 2, 6, 15, tzinfo=UTC)  # 01:15 EST
    assert in_window(window, first) and in_window(window, second)
    assert not in_window(window, datetime(2025, 11, 2, 7, 0, tzinfo=UTC))  # 02:00 EST


# --- naive datetimes ----------------------------------------------------------------------

NAIVE = datetime(2025, 6, 2, 10, 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: in_window(DEFAULT, NAIVE),
        lambda: next_window_start(DEFAULT, NAIVE),
        lambda: next_allowed_by_caps(ContactPolicy(), (), NAIVE),
        lambda: next_allowed_by_caps(ContactPolicy(), (NAIVE,), sh(MONDAY, 10)),
        lambda: decide_dial(DEFAULT, ContactPolicy(), DialFacts(NAIVE, False, True, MONDAY)),
        lambda: decide_dial(
            DEFAULT, ContactPolicy(), DialFacts(sh(MONDAY, 10), False, True, MONDAY, (NAIVE,))
        ),
    ],
    ids=["in_window", "next_window_start", "caps_at", "caps_attempt", "dial_now", "dial_attempt"],
)
def test_naive_datetimes_are_rejected(call):
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


# --- next_window_start --------------------------------------------------------------------


def test_inside_the_window_returns_the_same_instant_in_the_window_zone():
    at = datetime(2025, 6, 2, 3, 0, tzinfo=UTC)  # 11:00 Shanghai
    result = next_window_start(DEFAULT, at)
    assert result == at and result.tzinfo == SH and result.hour == 11


@pytest.mark.parametrize(
    "at, expected",
    [
        (sh(MONDAY, 0, 0), sh(MONDAY, 9)),
        (sh(MONDAY, 8, 59, 59), sh(MONDAY, 9)),
        (sh(MONDAY, 9), sh(MONDAY, 9)),
        (sh(MONDAY, 19, 59, 59), sh(MONDAY, 19, 59, 59)),
        (sh(MONDAY, 20), sh(MONDAY + timedelta(days=1), 9)),
        (sh(MONDAY, 23, 59, 59), sh(MONDAY + timedelta(days=1), 9)),
    ],
)
def test_next_start_around_the_daily_boundaries(at, expected):
    for same in in_zones(at):
        result = next_window_start(DEFAULT, same)
        assert result == expected and result.tzinfo == SH


@pytest.mark.parametrize(
    "at",
    [sh(date(2025, 9, 30), 20), sh(date(2025, 10, 1), 0), sh(date(2025, 10, 3), 12),
     sh(date(2025, 10, 7), 19, 59)],
)
def test_national_day_week_jumps_to_october_8th_nine_o_clock(at):
    window = CallingWindow(holidays=NATIONAL_DAY)
    assert next_window_start(window, at) == sh(date(2025, 10, 8), 9)


def test_workday_window_skips_the_weekend_and_a_monday_holiday():
    friday_evening = sh(date(2025, 6, 6), 20)
    assert next_window_start(CallingWindow(weekdays=WORKDAYS), friday_evening) == sh(
        date(2025, 6, 9), 9
    )
    window = CallingWindow(weekdays=WORKDAYS, holidays=frozenset({date(2025, 6, 9)}))
    assert next_window_start(window, friday_evening) == sh(date(2025, 6, 10), 9)


def test_no_weekdays_means_no_window():
    with pytest.raises(ValueError, match="no calling window"):
        next_window_start(CallingWindow(weekdays=frozenset()), sh(MONDAY, 10))


def test_search_gives_up_after_400_days_of_holidays():
    start = date(2025, 6, 3)
    closed = frozenset(start + timedelta(days=n) for n in range(SEARCH_DAYS + 1))
    with pytest.raises(NoCallingWindow):
        next_window_start(CallingWindow(holidays=closed), sh(MONDAY, 20))
    almost = closed - {start + timedelta(days=SEARCH_DAYS - 1)}
    found = next_window_start(CallingWindow(holidays=almost), sh(MONDAY, 20))
    assert found == sh(start + timedelta(days=SEARCH_DAYS - 1), 9)


NY_WINDOW = CallingWindow(timezone="America/New_York")


@pytest.mark.parametrize(
    "at, expected_utc",
    [
        # spring forward 2025-03-09 02:00 EST -> 03:00 EDT: 9:00 is 14:00 UTC before, 13:00 after
        (datetime(2025, 3, 7, 21, tzinfo=NY), datetime(2025, 3, 8, 14, tzinfo=UTC)),
        (datetime(2025, 3, 8, 21, tzinfo=NY), datetime(2025, 3, 9, 13, tzinfo=UTC)),
        (datetime(2025, 3, 9, 1, 59, tzinfo=NY), datetime(2025, 3, 9, 13, tzinfo=UTC)),
        # fall back 2025-11-02 02:00 EDT -> 01:00 EST: 9:00 is 13:00 UTC before, 14:00 after
        (datetime(2025, 10, 31, 21, tzinfo=NY), datetime(2025, 11, 1, 13, tzinfo=UTC)),
        (datetime(2025, 11, 1, 20, 30, tzinfo=NY), datetime(2025, 11, 2, 14, tzinfo=UTC)),
        (datetime(2025, 11, 2, 5, 30, tzinfo=UTC), datetime(2025, 11, 2, 14, tzinfo=UTC)),
    ],
)
def test_dst_zone_opens_at_local_nine_on_both_sides_of_the_transitions(at, expected_utc):
    result = next_window_start(NY_WINDOW, at)
    assert result == expected_utc and result.hour == 9 and result.tzinfo == NY


def test_window_starting_inside_the_spring_gap_opens_when_the_clock_jumps():
    # 02:30 never happens on 2025-03-09: the window opens at 03:00 EDT (07:00 UTC).
    window = CallingWindow(start=time(2, 30), end=time(5), timezone="America/New_York")
    result = next_window_start(window, datetime(2025, 3, 9, 0, 0, tzinfo=NY))
    assert result == datetime(2025, 3, 9, 7, 0, tzinfo=UTC) and result.hour == 3


def test_window_entirely_inside_the_spring_gap_is_skipped_that_day():
    window = CallingWindow(start=time(2, 10), end=time(2, 50), timezone="America/New_York")
    result = next_window_start(window, datetime(2025, 3, 9, 0, 0, tzinfo=NY))
    assert result == datetime(2025, 3, 10, 2, 10, tzinfo=NY)


def test_fall_back_reopens_a_window_when_the_clock_shows_its_start_again():
    window = CallingWindow(start=time(1, 30), end=time(1, 45), timezone="America/New_York")
    after_first_pass = datetime(2025, 11, 2, 5, 50, tzinfo=UTC)  # 01:50 EDT
    result = next_window_start(window, after_first_pass)
    assert result.astimezone(UTC) == datetime(2025, 11, 2, 6, 30, tzinfo=UTC)
    assert (result.hour, result.minute, result.fold) == (1, 30, 1)  # the second 01:30


def test_fall_back_reopens_a_window_when_the_clock_jumps_back_into_it():
    window = CallingWindow(start=time(0), end=time(1, 30), timezone="America/New_York")
    after_first_pass = datetime(2025, 11, 2, 5, 45, tzinfo=UTC)  # 01:45 EDT
    result = next_window_start(window, after_first_pass)
    assert result.astimezone(UTC) == datetime(2025, 11, 2, 6, 0, tzinfo=UTC)  # 01:00 EST


SWEEPS = {
    "shanghai_default": (DEFAULT, datetime(2025, 6, 1, tzinfo=UTC)),
    "shanghai_workdays_national_day": (
        CallingWindow(weekdays=WORKDAYS, holidays=NATIONAL_DAY),
        datetime(2025, 9, 26, tzinfo=UTC),
    ),
    "shanghai_evening_to_midnight": (
        CallingWindow(start=time(18), end=time(0), holidays=frozenset({date(2025, 6, 4)})),
        datetime(2025, 6, 1, tzinfo=UTC),
    ),
    "new_york_spring": (
        CallingWindow(timezone="America/New_York", weekdays=frozenset(range(6))),
        datetime(2025, 3, 5, tzinfo=UTC),
    ),
    "new_york_fall": (NY_WINDOW, datetime(2025, 10, 29, tzinfo=UTC)),
    "new_york_gap_start": (
        CallingWindow(start=time(2, 30), end=time(5), timezone="America/New_York"),
        datetime(2025, 3, 5, tzinfo=UTC),
    ),
    "new_york_repeated_hour": (
        CallingWindow(start=time(1, 30), end=time(1, 45), timezone="America/New_York"),
        datetime(2025, 10, 29, tzinfo=UTC),
    ),
    "new_york_ends_in_repeated_hour": (
        CallingWindow(start=time(0), end=time(1, 30), timezone="America/New_York"),
        datetime(2025, 10, 29, tzinfo=UTC),
    ),
    # Santiago changes clocks at midnight: back 24:00 -> 23:00 on Sat 2025-04-05, forward
    # 24:00 -> 01:00 on Sat 2025-09-06 (Sunday has no 00:xx).
    "santiago_back_at_midnight_late_window": (
        CallingWindow(start=time(23, 30), end=time(0), timezone="America/Santiago"),
        datetime(2025, 4, 2, tzinfo=UTC),
    ),
    "santiago_back_at_midnight_sundays_only": (
        CallingWindow(start=time(0), end=time(0), timezone="America/Santiago",
                      weekdays=frozenset({6})),
        datetime(2025, 4, 2, tzinfo=UTC),
    ),
    "santiago_forward_at_midnight": (
        CallingWindow(start=time(0), end=time(2), timezone="America/Santiago"),
        datetime(2025, 9, 3, tzinfo=UTC),
    ),
}


@pytest.mark.parametrize("name", list(SWEEPS))
def test_next_start_is_the_first_in_window_minute_for_every_minute_of_a_week(name):
    """Brute force: every boundary here falls on a whole UTC minute, so the true answer for a
    minute is the first minute at or after it that is inside the window."""
    window, first = SWEEPS[name]
    minutes = [first + timedelta(minutes=m) for m in range(14 * 24 * 60)]
    inside = [in_window(window, m) for m in minutes]
    next_inside: list[int | None] = [None] * len(minutes)
    upcoming = None
    for i in range(len(minutes) - 1, -1, -1):
        upcoming = i if inside[i] else upcoming
        next_inside[i] = upcoming
    for i in range(7 * 24 * 60):
        expected = next_inside[i]
        assert expected is not None, f"{name}: sweep too short"
        result = next_window_start(window, minutes[i])
        assert result.astimezone(UTC) == minutes[expected], f"{name}: from {minutes[i]}"
        assert result.tzinfo == window.zone


instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
windows = st.sampled_from(
    [DEFAULT, NY_WINDOW, CallingWindow(weekdays=WORKDAYS, holidays=NATIONAL_DAY),
     CallingWindow(start=time(8, 30), end=time(21, 15), timezone="Europe/London"),
     CallingWindow(start=time(1, 30), end=time(2, 30), timezone="America/New_York")]
)


@settings(max_examples=300, deadline=None)
@given(window=windows, at=instants)
def test_next_start_is_inside_not_earlier_and_zone_independent(window, at):
    results = {next_window_start(window, same).astimezone(UTC) for same in in_zones(at)}
    assert len(results) == 1
    result = results.pop()
    assert result >= at and in_window(window, result)
    assert result == at or not in_window(window, result - timedelta(microseconds=1))


# --- contact caps -------------------------------------------------------------------------

POLICY = ContactPolicy()  # 3 per rolling 7 days, 4 hours apart
T = sh(MONDAY, 10)


@pytest.mark.parametrize("fields", [{"max_attempts_per_week": 0}, {"min_gap": timedelta(-1)}])
def test_bad_contact_policies_are_rejected(fields):
    with pytest.raises(ValueError):
        ContactPolicy(**fields)


def test_no_previous_attempts_means_now():
    assert next_allowed_by_caps(POLICY, (), T) is T


@pytest.mark.parametrize(
    "at, expected",
    [
        (T + timedelta(hours=1), T + timedelta(hours=4)),
        (T + timedelta(hours=4) - timedelta(microseconds=1), T + timedelta(hours=4)),
        (T + timedelta(hours=4), T + timedelta(hours=4)),  # exactly min_gap later: allowed
        (T + timedelta(hours=9), T + timedelta(hours=9)),
    ],
)
def test_min_gap_is_inclusive(at, expected):
    assert next_allowed_by_caps(POLICY, (T,), at) == expected


def test_zero_min_gap_allows_back_to_back_attempts():
    assert next_allowed_by_caps(ContactPolicy(min_gap=timedelta(0)), (T,), T) == T


THREE = (T, T + timedelta(days=1), T + timedelta(days=2))  # Mon, Tue, Wed 10:00


@pytest.mark.parametrize(
    "at, expected",
    [
        (T + timedelta(days=3), T + timedelta(days=7)),  # the 4th waits for Monday's to age out
        (T + timedelta(days=7) - timedelta(microseconds=1), T + timedelta(days=7)),
        (T + timedelta(days=7), T + timedelta(days=7)),  # exactly 7 days after the oldest
        (T + timedelta(days=8), T + timedelta(days=8)),
    ],
)
def test_fourth_attempt_in_a_week_waits_until_the_oldest_leaves_the_rolling_week(at, expected):
    assert next_allowed_by_caps(POLICY, THREE, at) == expected
    assert next_allowed_by_caps(POLICY, tuple(reversed(THREE)), at) == expected


def test_two_attempts_in_a_week_leave_room_for_a_third():
    assert next_allowed_by_caps(POLICY, THREE[:2], T + timedelta(days=3)) == T + timedelta(days=3)


def test_attempts_older_than_a_week_do_not_count():
    old = tuple(T - timedelta(days=8, hours=h) for h in range(5))
    assert next_allowed_by_caps(POLICY, old, T) == T


def test_the_cap_counts_the_most_recent_attempts():
    # 5 attempts (an older policy allowed more): the 3rd most recent decides.
    attempts = tuple(T + timedelta(days=d) for d in (0, 1, 2, 3, 4))
    at = T + timedelta(days=5)
    assert next_allowed_by_caps(POLICY, attempts, at) == T + timedelta(days=9)


def test_one_per_week():
    policy = ContactPolicy(max_attempts_per_week=1, min_gap=timedelta(0))
    assert next_allowed_by_caps(policy, (T,), T + timedelta(days=2)) == T + timedelta(days=7)


def test_caps_use_real_hours_across_dst_and_answer_in_the_zone_of_at():
    last = datetime(2025, 3, 9, 0, 30, tzinfo=NY)  # EST; clocks spring forward at 02:00
    at = datetime(2025, 3, 9, 1, 0, tzinfo=NY)
    result = next_allowed_by_caps(POLICY, (last,), at)
    assert result.astimezone(UTC) - last.astimezone(UTC) == timedelta(hours=4)
    assert (result.hour, result.minute, result.tzinfo) == (5, 30, NY)


def test_attempts_and_at_may_come_in_mixed_zones():
    attempts = tuple(a.astimezone(z) for a, z in zip(THREE, (UTC, NY, SH)))
    at = (T + timedelta(days=3)).astimezone(UTC)
    assert next_allowed_by_caps(POLICY, attempts, at) == T + timedelta(days=7)


def respects_caps(policy: ContactPolicy, attempts: list[datetime], t: datetime) -> bool:
    """The caps written out directly: the reference for the property test."""
    if attempts and t < max(attempts) + policy.min_gap:
        return False
    in_week = sum(1 for a in attempts if t - timedelta(days=7) < a <= t)
    return in_week < policy.max_attempts_per_week


@settings(max_examples=300, deadline=None)
@given(
    per_week=st.integers(1, 4),
    gap_minutes=st.integers(0, 600),
    offsets=st.lists(st.integers(0, 20 * 24 * 60), max_size=8),
    at_offset=st.integers(0, 20 * 24 * 60),
)
def test_caps_answer_is_the_earliest_moment_respecting_both_caps(
    per_week, gap_minutes, offsets, at_offset
):
    policy = ContactPolicy(per_week, timedelta(minutes=gap_minutes))
    base = datetime(2025, 6, 1, tzinfo=UTC)
    attempts = [base + timedelta(minutes=m) for m in offsets]
    at = base + timedelta(minutes=at_offset)
    result = next_allowed_by_caps(policy, attempts, at)
    assert result >= at and respects_caps(policy, attempts, result)
    assert result == at or not respects_caps(policy, attempts, result - timedelta(microseconds=1))


# --- decide_dial --------------------------------------------------------------------------

NOW = sh(MONDAY, 10)
VALID = date(2025, 6, 30)


def facts(**overrides) -> DialFacts:
    """A consenting customer with a valid offer, never called, on Monday 10:00 in Shanghai."""
    fields = dict(
        now=NOW, on_do_not_contact=False, consent=True, offer_valid_until=VALID,
        previous_attempts=(),
    )
    return DialFacts(**(fields | overrides))


def test_a_fresh_eligible_customer_inside_the_window_is_dialled():
    assert decide_dial(DEFAULT, POLICY, facts()) == DialDecision("dial", "ok")


BLOCKERS = {
    "no_consent": {"consent": False},
    "no_offer": {"offer_valid_until": None},
    "expired": {"offer_valid_until": MONDAY - timedelta(days=1)},
    "night": {"now": sh(MONDAY, 23)},
    "holiday": {"now": sh(date(2025, 10, 2), 10)},
    "caps": {"previous_attempts": (NOW - timedelta(hours=1),)},
}


@pytest.mark.parametrize("count", range(len(BLOCKERS) + 1))
def test_do_not_contact_beats_everything(count):
    names = list(BLOCKERS)
    for start in range(len(names)):
        chosen = [names[(start + i) % len(names)] for i in range(count)]
        overrides = {k: v for name in chosen for k, v in BLOCKERS[name].items()}
        decision = decide_dial(
            CallingWindow(holidays=NATIONAL_DAY), POLICY, facts(on_do_not_contact=True, **overrides)
        )
        assert decision == DialDecision("skip", "do_not_contact"), chosen


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"consent": False, "offer_valid_until": None, "now": sh(MONDAY, 23)}, "no_consent"),
        ({"offer_valid_until": None, "now": sh(MONDAY, 23)}, "no_offer"),
        ({"offer_valid_until": date(2025, 6, 1), "previous_attempts": (NOW,)}, "offer_expired"),
    ],
)
def test_skip_reasons_are_checked_in_order(overrides, reason):
    assert decide_dial(DEFAULT, POLICY, facts(**overrides)) == DialDecision("skip", reason)


def test_offer_valid_until_today_is_still_valid():
    assert decide_dial(DEFAULT, POLICY, facts(offer_valid_until=MONDAY)).verdict == "dial"
    assert decide_dial(DEFAULT, POLICY, facts(offer_valid_until=MONDAY - timedelta(days=1))) == (
        DialDecision("skip", "offer_expired")
    )


@pytest.mark.parametrize(
    "now_utc, verdict",
    [
        (datetime(2025, 6, 30, 15, 59, 59, tzinfo=UTC), "dial"),  # June 30 23:59:59 in Shanghai
        (datetime(2025, 6, 30, 16, 0, 0, tzinfo=UTC), "skip"),  # July 1 00:00 in Shanghai
    ],
)
def test_offer_expiry_uses_the_window_zone_date_not_utc(now_utc, verdict):
    for now in in_zones(now_utc):
        decision = decide_dial(ALL_DAY, POLICY, facts(now=now, offer_valid_until=date(2025, 6, 30)))
        assert decision.verdict == verdict
        assert decision.reason == ("ok" if verdict == "dial" else "offer_expired")


def test_outside_hours_waits_for_the_window():
    decision = decide_dial(DEFAULT, POLICY, facts(now=sh(MONDAY, 7, 30)))
    assert decision == DialDecision("wait", "outside_window", sh(MONDAY, 9), ("outside_window",))
    assert decision.not_before.tzinfo == SH


def test_holiday_waits_and_names_the_holiday():
    window = CallingWindow(holidays=NATIONAL_DAY)
    now = sh(date(2025, 10, 3), 10)
    decision = decide_dial(window, POLICY, facts(now=now, offer_valid_until=date(2025, 10, 31)))
    assert decision == DialDecision("wait", "holiday", sh(date(2025, 10, 8), 9), ("holiday",))


def test_excluded_weekday_is_outside_the_window():
    decision = decide_dial(
        CallingWindow(weekdays=WORKDAYS), POLICY, facts(now=sh(date(2025, 6, 7), 10))
    )
    assert (decision.verdict, decision.reason) == ("wait", "outside_window")
    assert decision.not_before == sh(date(2025, 6, 9), 9)


def test_weekly_cap_waits_for_the_oldest_attempt_to_age_out():
    attempts = (sh(MONDAY, 11), sh(MONDAY, 16), sh(MONDAY + timedelta(days=1), 10))
    decision = decide_dial(
        DEFAULT, POLICY, facts(now=sh(MONDAY + timedelta(days=3), 10), previous_attempts=attempts)
    )
    assert decision == DialDecision(
        "wait", "weekly_cap", sh(MONDAY + timedelta(days=7), 11), ("weekly_cap",)
    )


def test_min_gap_waits_four_hours():
    decision = decide_dial(DEFAULT, POLICY, facts(previous_attempts=(sh(MONDAY, 9),)))
    assert decision == DialDecision("wait", "min_gap", sh(MONDAY, 13), ("min_gap",))


def test_min_gap_pushing_past_closing_time_lands_on_the_next_opening():
    decision = decide_dial(
        DEFAULT, POLICY, facts(now=sh(MONDAY, 17), previous_attempts=(sh(MONDAY, 16, 30),))
    )
    assert decision == DialDecision(
        "wait", "min_gap", sh(MONDAY + timedelta(days=1), 9), ("min_gap", "outside_window")
    )


def test_caps_are_applied_before_the_window():
    # An attempt at 07:00 (say, from a campaign with earlier hours) and now 08:00: the gap runs
    # to 11:00, inside the window, so the window never moves the time and is not named.
    decision = decide_dial(
        DEFAULT, POLICY, facts(now=sh(MONDAY, 8), previous_attempts=(sh(MONDAY, 7),))
    )
    assert decision == DialDecision("wait", "min_gap", sh(MONDAY, 11), ("min_gap",))


def test_an_old_attempt_never_names_a_cap_once_the_window_has_moved_past_it():
    # Caps are fixed lower bounds: when the window moves the time, the caps already hold, so
    # blocked_by is (cap,), (window,) or (cap, window), never (window, cap).
    decision = decide_dial(
        DEFAULT, POLICY, facts(now=sh(MONDAY, 7), previous_attempts=(sh(MONDAY, 2, 30),))
    )
    assert decision == DialDecision("wait", "outside_window", sh(MONDAY, 9), ("outside_window",))


def test_weekly_cap_ending_on_a_holiday_waits_for_the_window_again():
    window = CallingWindow(holidays=NATIONAL_DAY)
    attempts = (sh(date(2025, 9, 24), 10), sh(date(2025, 9, 25), 10), sh(date(2025, 9, 26), 10))
    decision = decide_dial(
        window, POLICY,
        facts(now=sh(date(2025, 9, 29), 10), previous_attempts=attempts,
              offer_valid_until=date(2025, 10, 31)),
    )
    assert decision == DialDecision(
        "wait", "weekly_cap", sh(date(2025, 10, 8), 9), ("weekly_cap", "holiday")
    )


@pytest.mark.parametrize(
    "valid_until, expected",
    [
        (date(2025, 10, 5), DialDecision("skip", "offer_expires_before_next_window",
                                         blocked_by=("outside_window",))),
        (date(2025, 10, 7), DialDecision("skip", "offer_expires_before_next_window",
                                         blocked_by=("outside_window",))),
        (date(2025, 10, 8), DialDecision("wait", "outside_window", sh(date(2025, 10, 8), 9),
                                         ("outside_window",))),
    ],
)
def test_offer_expiring_before_the_next_window_is_skipped(valid_until, expected):
    window = CallingWindow(holidays=NATIONAL_DAY)
    now = sh(date(2025, 9, 30), 20, 30)
    assert decide_dial(window, POLICY, facts(now=now, offer_valid_until=valid_until)) == expected


def test_offer_expiring_before_the_caps_allow_is_skipped():
    decision = decide_dial(
        DEFAULT, POLICY,
        facts(now=sh(MONDAY, 18), previous_attempts=(sh(MONDAY, 17),), offer_valid_until=MONDAY),
    )
    assert (decision.verdict, decision.reason) == ("skip", "offer_expires_before_next_window")


def test_no_window_at_all_skips_an_offer_that_expires_within_the_search():
    closed = CallingWindow(weekdays=frozenset())
    assert decide_dial(closed, POLICY, facts()).reason == "offer_expires_before_next_window"
    with pytest.raises(NoCallingWindow):
        decide_dial(closed, POLICY, facts(offer_valid_until=date(2030, 1, 1)))


@pytest.mark.parametrize(
    "overrides",
    [{}, {"now": sh(MONDAY, 7)}, {"previous_attempts": (sh(MONDAY, 9),)},
     {"now": sh(MONDAY, 19), "previous_attempts": (sh(MONDAY, 18), sh(MONDAY, 8))}],
)
def test_decision_is_the_same_whatever_zone_now_is_written_in(overrides):
    base = facts(**overrides)
    decisions = {decide_dial(DEFAULT, POLICY, facts(**(overrides | {"now": now})))
                 for now in in_zones(base.now)}
    assert len(decisions) == 1
    decision = decisions.pop()
    assert decision.not_before is None or decision.not_before.tzinfo == SH


@settings(max_examples=300, deadline=None)
@given(
    window=windows,
    now=instants,
    offsets=st.lists(st.integers(1, 10 * 24 * 60), max_size=5),
    valid_days=st.integers(-2, 30),
)
def test_wait_times_are_dialable_and_dials_are_legal(window, now, offsets, valid_days):
    attempts = tuple(now - timedelta(minutes=m) for m in offsets)
    valid_until = now.astimezone(window.zone).date() + timedelta(days=valid_days)
    base = facts(now=now, previous_attempts=attempts, offer_valid_until=valid_until)
    decision = decide_dial(window, POLICY, base)
    if decision.verdict == "dial":
        assert in_window(window, now) and next_allowed_by_caps(POLICY, attempts, now) == now
    elif decision.verdict == "wait":
        assert decision.not_before > now and decision.reason == decision.blocked_by[0]
        later = facts(now=decision.not_before, previous_attempts=attempts,
                      offer_valid_until=valid_until)
        assert decide_dial(window, POLICY, later) == DialDecision("dial", "ok")
    else:
        assert decision.reason in {"offer_expired", "offer_expires_before_next_window"}

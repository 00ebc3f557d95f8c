"""Retry scheduling: the backoff sequence, exhaustion, final outcomes, booked callbacks, jitter."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from outbound.retry import CALLBACK, FINAL, OUTCOMES, RETRYABLE, RetryPolicy, next_attempt_at

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
ENDED = datetime(2025, 6, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
POLICY = RetryPolicy()  # 30 min, 2 h, 1 day (repeating); 5 attempts


def test_outcome_sets_are_disjoint_and_callback_is_its_own_kind():
    assert not RETRYABLE & FINAL
    assert CALLBACK not in RETRYABLE | FINAL
    assert OUTCOMES == RETRYABLE | FINAL | {CALLBACK}


@pytest.mark.parametrize(
    "attempts_made, delay",
    [
        (1, timedelta(minutes=30)),
        (2, timedelta(hours=2)),
        (3, timedelta(days=1)),
        (4, timedelta(days=1)),  # the last delay repeats
        (5, None),  # max_attempts reached
        (6, None),
    ],
)
def test_backoff_sequence_and_exhaustion(attempts_made, delay):
    expected = None if delay is None else ENDED + delay
    assert next_attempt_at(POLICY, "no_answer", attempts_made, ENDED) == expected


@pytest.mark.parametrize("outcome", sorted(RETRYABLE))
def test_every_retryable_outcome_is_retried(outcome):
    assert next_attempt_at(POLICY, outcome, 1, ENDED) == ENDED + timedelta(minutes=30)
    assert next_attempt_at(POLICY, outcome, POLICY.max_attempts, ENDED) is None


@pytest.mark.parametrize("outcome", sorted(FINAL))
def test_final_outcomes_are_never_retried(outcome):
    assert next_attempt_at(POLICY, outcome, 1, ENDED) is None
    booked = ENDED + timedelta(hours=1)
    assert next_attempt_at(POLICY, outcome, 1, ENDED, callback_at=booked) is None


@pytest.mark.parametrize("outcome", ["NO_ANSWER", "", "callback_later", "hangup", " busy"])
def test_unknown_outcomes_are_rejected(outcome):
    with pytest.raises(ValueError, match="unknown call outcome"):
        next_attempt_at(POLICY, outcome, 1, ENDED)


def test_single_attempt_policy_never_retries():
    assert next_attempt_at(RetryPolicy(max_attempts=1), "busy", 1, ENDED) is None


def test_single_delay_backoff_repeats():
    policy = RetryPolicy(backoff=(timedelta(hours=3),), max_attempts=10)
    assert [next_attempt_at(policy, "busy", n, ENDED) for n in (1, 5, 9)] == [
        ENDED + timedelta(hours=3)
    ] * 3


BOOKED = ENDED + timedelta(hours=26)


@pytest.mark.parametrize(
    "attempts_made, expected",
    [
        (1, BOOKED),
        (4, BOOKED),
        (5, BOOKED),  # at max_attempts: a booked callback still gets one more
        (6, None),  # but only one
    ],
)
def test_booked_callback_is_honoured_up_to_one_attempt_past_the_limit(attempts_made, expected):
    assert next_attempt_at(POLICY, "callback", attempts_made, ENDED, callback_at=BOOKED) == expected


def test_booked_callback_ignores_the_backoff_even_when_sooner():
    soon = ENDED + timedelta(minutes=5)
    assert next_attempt_at(POLICY, "callback", 3, ENDED, callback_at=soon) == soon


def test_booked_callback_in_the_past_is_moved_to_the_end_of_the_call():
    past = ENDED - timedelta(hours=1)
    assert next_attempt_at(POLICY, "callback", 1, ENDED, callback_at=past) == ENDED


def test_booked_callback_keeps_its_zone():
    booked = datetime(2025, 6, 3, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    result = next_attempt_at(POLICY, "callback", 1, ENDED, callback_at=booked)
    assert result is booked


@pytest.mark.parametrize(
    "attempts_made, expected",
    [(1, ENDED + timedelta(minutes=30)), (3, ENDED + timedelta(minutes=30)), (5, None)],
)
def test_callback_without_a_time_is_a_first_backoff_retry_within_the_limit(attempts_made, expected):
    assert next_attempt_at(POLICY, "callback", attempts_made, ENDED) == expected


def test_callback_time_is_ignored_for_other_outcomes():
    assert next_attempt_at(POLICY, "busy", 1, ENDED, callback_at=BOOKED) == ENDED + timedelta(
        minutes=30
    )


def test_backoff_counts_real_time_across_dst():
    # 2025-03-09 01:45 EST + 30 min is 03:15 EDT on the wall, 30 real minutes later.
    ended = datetime(2025, 3, 9, 1, 45, tzinfo=NY)
    result = next_attempt_at(POLICY, "no_answer", 1, ended)
    assert result.astimezone(UTC) - ended.astimezone(UTC) == timedelta(minutes=30)
    assert (result.hour, result.minute, result.tzinfo) == (3, 15, NY)
    day = next_attempt_at(POLICY, "no_answer", 3, ended)
    assert day.astimezone(UTC) - ended.astimezone(UTC) == timedelta(hours=24)
    assert (day.hour, day.minute) == (2, 45)  # a day of real time is 25 wall hours here


def test_zero_jitter_is_exact():
    assert next_attempt_at(RetryPolicy(jitter=0.0), "busy", 2, ENDED) == ENDED + timedelta(hours=2)


def test_jitter_is_bounded_deterministic_and_spreads_calls():
    policy = RetryPolicy(jitter=0.2)
    delays = []
    for second in range(200):
        ended = ENDED + timedelta(seconds=second)
        result = next_attempt_at(policy, "no_answer", 2, ended)
        assert result == next_attempt_at(policy, "no_answer", 2, ended)  # same inputs, same time
        delay = result - ended
        assert timedelta(hours=2) * 0.8 <= delay <= timedelta(hours=2) * 1.2
        delays.append(delay)
    assert len(set(delays)) > 150
    assert min(delays) < timedelta(hours=1, minutes=45)
    assert max(delays) > timedelta(hours=2, minutes=15)


@pytest.mark.parametrize(
    "fields",
    [
        {"backoff": ()},
        {"backoff": (timedelta(0),)},
        {"backoff": (timedelta(minutes=30), timedelta(minutes=-1))},
        {"max_attempts": 0},
        {"max_attempts": True},
        {"jitter": -0.1},
        {"jitter": 1.0},
    ],
)
def test_bad_policies_are_rejected(fields):
    with pytest.raises(ValueError):
        RetryPolicy(**fields)


def test_backoff_given_as_a_list_is_stored_as_a_tuple():
    policy = RetryPolicy(backoff=[timedelta(minutes=10)])
    assert policy.backoff == (timedelta(minutes=10),) and hash(policy)


@pytest.mark.parametrize("attempts_made", [0, -1])
def test_attempts_made_counts_the_attempt_that_just_ended(attempts_made):
    with pytest.raises(ValueError, match="attempts_made"):
        next_attempt_at(POLICY, "busy", attempts_made, ENDED)


def test_naive_times_are_rejected():
    naive = datetime(2025, 6, 2, 10, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_attempt_at(POLICY, "busy", 1, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_attempt_at(POLICY, "callback", 1, ENDED, callback_at=naive)

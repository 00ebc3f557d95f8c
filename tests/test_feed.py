"""The feed's cursor over an append-only log whose ids may commit out of order (pure)."""

from __future__ import annotations

from handoff.feed import LogCursor


def test_ids_in_order_are_delivered_once_and_the_floor_advances():
    cursor = LogCursor(start_after=10)
    assert cursor.accept([11, 12, 13], now=0.0) == [11, 12, 13]
    assert cursor.floor == 13
    assert cursor.accept([12, 13], now=0.1) == []  # refetched rows are not delivered again


def test_a_late_commit_below_a_seen_id_is_still_delivered():
    """PostgreSQL: id 12's transaction commits after id 13's."""
    cursor = LogCursor(start_after=10)
    assert cursor.accept([11, 13], now=0.0) == [11, 13]
    assert cursor.floor == 11  # held at the gap, so the next fetch still asks for 12
    assert cursor.accept([12, 13], now=1.0) == [12]
    assert cursor.floor == 13


def test_a_gap_that_never_fills_is_given_up_after_the_grace_period():
    """A rolled-back insert leaves a hole in the sequence for ever."""
    cursor = LogCursor(start_after=0, grace_s=5.0)
    cursor.accept([1, 3], now=0.0)
    cursor.accept([3], now=4.9)
    assert cursor.floor == 1
    assert cursor.accept([3, 4], now=5.0) == [4]
    assert cursor.floor == 4


def test_unsorted_and_repeated_ids_in_one_fetch_are_delivered_once_in_order():
    cursor = LogCursor(start_after=0)
    assert cursor.accept([3, 1, 2, 2], now=0.0) == [1, 2, 3]

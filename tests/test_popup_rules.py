"""The app pop-ups' rules (outbound.popup_rules, pure): every event in every status, which
pop-ups may be served, and which one is."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.vocabulary import PopupStatus as S
from outbound.popup_rules import (
    EventRefused,
    PopupEvent,
    PopupView,
    parse_event,
    pick,
    servable,
    step,
    withdrawable,
)

E = PopupEvent
NOW = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)

ACCEPTED = {
    (S.PENDING, E.SHOWN): S.SHOWN,
    (S.PENDING, E.CLICKED): S.CLICKED,  # clicking it means it was shown
    (S.PENDING, E.DISMISSED): S.DISMISSED,
    (S.SHOWN, E.SHOWN): S.SHOWN,  # a repeat
    (S.SHOWN, E.CLICKED): S.CLICKED,
    (S.SHOWN, E.DISMISSED): S.DISMISSED,
    (S.CLICKED, E.CLICKED): S.CLICKED,  # a repeat
    (S.CLICKED, E.SHOWN): S.CLICKED,  # a late report of what clicking implied
    (S.DISMISSED, E.DISMISSED): S.DISMISSED,
    (S.DISMISSED, E.SHOWN): S.DISMISSED,
}


@pytest.mark.parametrize("event", list(E), ids=str)
@pytest.mark.parametrize("status", list(S), ids=str)
def test_every_event_in_every_status(status, event):
    if (status, event) in ACCEPTED:
        done = step(status, event)
        assert done.status is ACCEPTED[status, event]
        assert done.marks == {event, E.SHOWN}  # every event implies the pop-up was shown
    else:
        with pytest.raises(EventRefused, match=f"cannot record {event.value} on this pop-up: it "):
            step(status, event)


@pytest.mark.parametrize(("status", "event", "why"), [
    ("dismissed", "clicked", "it was dismissed"),
    ("clicked", "dismissed", "it was clicked"),
    ("withdrawn", "shown", "it was withdrawn"),
    ("withdrawn", "clicked", "it was withdrawn"),
])
def test_a_refusal_says_why(status, event, why):
    with pytest.raises(EventRefused, match=why):
        step(status, event)


def test_steps_take_the_stored_strings_too():
    assert step("pending", "clicked").status is S.CLICKED


@pytest.mark.parametrize("value", ["SHOWN", "show", "", "withdrawn", "pending", None, 1, ["shown"]])
def test_unknown_events_are_refused_naming_the_known_ones(value):
    with pytest.raises(ValueError, match="expected one of shown, clicked, dismissed"):
        parse_event(value)
    with pytest.raises(ValueError):
        step(S.PENDING, value)


@pytest.mark.parametrize("status", list(S), ids=str)
def test_only_a_pending_popup_can_be_withdrawn(status):
    assert withdrawable(status) is (status is S.PENDING)


def popup(id: int = 1, *, status: S = S.PENDING, created: timedelta = timedelta(hours=-1),
          lasts: timedelta = timedelta(days=1)) -> PopupView:
    return PopupView(id=id, customer_id="C0001", campaign_id="dec", variant="A",
                     title="您有一笔预授信额度", body="点击了解", status=status,
                     created_at=NOW + created, expires_at=NOW + created + lasts)


@pytest.mark.parametrize("status", list(S), ids=str)
def test_only_a_pending_popup_is_servable(status):
    assert servable(popup(status=status), NOW, opted_out=False) is (status is S.PENDING)


def test_a_popup_is_servable_until_it_expires():
    expiring = popup(created=timedelta(hours=-2), lasts=timedelta(hours=2))  # expires at NOW
    assert servable(expiring, NOW - timedelta(microseconds=1), opted_out=False)
    assert not servable(expiring, NOW, opted_out=False)


def test_an_opted_out_customer_is_served_nothing():
    assert not servable(popup(), NOW, opted_out=True)
    assert pick([popup(1), popup(2)], NOW, opted_out=True) is None


def test_the_newest_servable_popup_is_served():
    older = popup(1, created=timedelta(hours=-3))
    newer = popup(2, created=timedelta(hours=-1))
    newest_but_expired = popup(3, created=timedelta(hours=-1) + timedelta(minutes=1),
                               lasts=timedelta(minutes=30))
    newest_but_shown = popup(4, status=S.SHOWN, created=timedelta(0))
    assert pick([older, newest_but_expired, newer, newest_but_shown], NOW,
                opted_out=False) == newer
    assert pick([older], NOW, opted_out=False) == older


def test_popups_made_at_the_same_time_are_served_by_the_higher_id():
    assert pick([popup(7), popup(9), popup(8)], NOW, opted_out=False).id == 9


def test_nothing_to_serve_is_none():
    assert pick([], NOW, opted_out=False) is None
    assert pick([popup(status=S.WITHDRAWN), popup(lasts=timedelta(minutes=10))], NOW,
                opted_out=False) is None

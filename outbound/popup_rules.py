"""The mobile-banking app's pop-ups: which reported event moves a pop-up where, and which
pop-up to serve (pure: no database, no clock).

A pop-up's life (``core.vocabulary.PopupStatus``)::

    pending -> shown -> clicked | dismissed
    pending -> clicked | dismissed   (the report of "shown" was lost: clicking or dismissing
                                      it means it was shown)
    pending -> withdrawn             (the customer opted out, or the campaign stopped)

The app reports over a mobile network and retries, so reports come twice and out of order:

- a repeated event changes nothing and keeps its first time;
- ``shown`` after ``clicked`` or ``dismissed`` is old news (both imply it was shown) and
  changes nothing;
- ``clicked`` after ``dismissed`` and ``dismissed`` after ``clicked`` contradict the recorded
  outcome and are refused, as is any event on a ``withdrawn`` pop-up.

Expiry only stops a pop-up being served; events still record what the customer did with one
the app fetched in time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from core.vocabulary import PopupStatus, StrEnum


class PopupEvent(StrEnum):
    """What the app reports a customer did with a pop-up."""

    SHOWN = "shown"
    CLICKED = "clicked"
    """The customer tapped it: the chat opened."""
    DISMISSED = "dismissed"


class EventRefused(ValueError):
    """The event contradicts what is recorded of the pop-up."""


@dataclass(frozen=True)
class PopupView:
    """A pop-up as the repository reads it."""

    id: int
    customer_id: str
    campaign_id: str | None
    variant: str | None
    title: str
    body: str
    status: PopupStatus
    created_at: datetime
    expires_at: datetime
    shown_at: datetime | None = None
    clicked_at: datetime | None = None
    dismissed_at: datetime | None = None


@dataclass(frozen=True)
class Step:
    """What an accepted event does: the pop-up's status after it, and the events whose time
    it records (each only if not recorded yet, so a repeat keeps the first time)."""

    status: PopupStatus
    marks: frozenset[PopupEvent]


P, E = PopupStatus, PopupEvent
AFTER: MappingProxyType[tuple[PopupStatus, PopupEvent], PopupStatus] = MappingProxyType({
    (P.PENDING, E.SHOWN): P.SHOWN,
    (P.PENDING, E.CLICKED): P.CLICKED,
    (P.PENDING, E.DISMISSED): P.DISMISSED,
    (P.SHOWN, E.SHOWN): P.SHOWN,
    (P.SHOWN, E.CLICKED): P.CLICKED,
    (P.SHOWN, E.DISMISSED): P.DISMISSED,
    (P.CLICKED, E.SHOWN): P.CLICKED,
    (P.CLICKED, E.CLICKED): P.CLICKED,
    (P.DISMISSED, E.SHOWN): P.DISMISSED,
    (P.DISMISSED, E.DISMISSED): P.DISMISSED,
})
"""Every accepted (status, event) and the status it leaves; any other pair is refused."""

_WHY = MappingProxyType({
    P.CLICKED: "it was clicked (the customer opened the chat)",
    P.DISMISSED: "it was dismissed",
    P.WITHDRAWN: "it was withdrawn",
})


def parse_event(value: object) -> PopupEvent:
    """The event named by ``value``; a :class:`ValueError` lists the known ones otherwise."""
    if isinstance(value, str):
        try:
            return PopupEvent(value)
        except ValueError:
            pass
    raise ValueError(f"unknown event {value!r}; expected one of {', '.join(PopupEvent)}")


def step(status: PopupStatus | str, event: PopupEvent | str) -> Step:
    """What ``event`` does to a pop-up in ``status``; :class:`EventRefused` says why not."""
    current, wanted = PopupStatus(status), parse_event(event)
    after = AFTER.get((current, wanted))
    if after is None:
        raise EventRefused(f"cannot record {wanted.value} on this pop-up: {_WHY[current]}")
    return Step(after, frozenset({wanted, E.SHOWN}))  # each event implies it was shown


def withdrawable(status: PopupStatus | str) -> bool:
    """Whether a pop-up in ``status`` can still be withdrawn (only one nobody has seen)."""
    return PopupStatus(status) is P.PENDING


def servable(popup: PopupView, now: datetime, *, opted_out: bool) -> bool:
    """Whether the app may show ``popup`` now: pending, unexpired, and its customer has not
    opted out."""
    return popup.status == P.PENDING and now < popup.expires_at and not opted_out


def pick(popups: Iterable[PopupView], now: datetime, *, opted_out: bool) -> PopupView | None:
    """The pop-up to serve: the newest servable one (by creation, then id), or None."""
    candidates = [p for p in popups if servable(p, now, opted_out=opted_out)]
    return max(candidates, key=lambda p: (p.created_at, p.id), default=None)

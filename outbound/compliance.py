"""Calling compliance: when a campaign may call, how often one customer may be called, and the
dial / wait / skip decision made right before each dial. Pure functions: no I/O and no clock.

Every instant is a timezone-aware ``datetime``; naive ones raise ``ValueError``. Comparisons and
arithmetic happen in UTC; wall-clock rules are read in the window's zone. Callers, beware two
Python traps with the zone-local datetimes returned here: aware datetimes sharing a tzinfo
compare and add by wall clock (wrong across DST changes), and a time in a repeated fall-back hour
(``fold=1``) is never ``==`` to any datetime of another zone. Convert to UTC before comparing.

Boundaries, all inclusive at the start and exclusive at the end:

- hours: ``start <= local time < end``; ``end == time(0, 0)`` means midnight, the end of the day.
- weekly cap: a new attempt at ``t`` counts the attempts in ``(t - 7 days, t]`` (7 x 24 real
  hours), so the 4th of 3-per-week is allowed exactly 7 days after the oldest of the three.
- min gap: a new attempt exactly ``min_gap`` after the previous one is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SEARCH_DAYS = 400  # how far next_window_start looks ahead, in local days
WEEK = timedelta(days=7)
_UTC = timezone.utc
_MIDNIGHT = time(0, 0)
_SECOND = timedelta(seconds=1)


class NoCallingWindow(ValueError):
    """No moment of the calling window falls within ``SEARCH_DAYS`` days."""


def _utc(value: datetime, name: str) -> datetime:
    """``value`` as a UTC datetime; ``ValueError`` if it is naive."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(_UTC)


@dataclass(frozen=True)
class CallingWindow:
    """When a campaign may call: local wall-clock hours [start, end), weekdays, minus holidays.

    ``end = time(0, 0)`` means midnight (the end of the day). ``weekdays`` uses 0 = Monday.
    ``holidays`` are local dates in ``timezone``. Sets are accepted and stored as frozensets.
    """

    start: time = time(9, 0)
    end: time = time(20, 0)
    timezone: str = "Asia/Shanghai"  # IANA name, zoneinfo
    holidays: frozenset[date] = frozenset()  # local dates with no calls
    weekdays: frozenset[int] = frozenset(range(7))  # 0=Monday

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValueError(f"CallingWindow.{name} must be a naive local time, got {value!r}")
        if self.end != _MIDNIGHT and self.start >= self.end:
            raise ValueError(
                f"CallingWindow.start {self.start} must be before end {self.end} "
                "(end 00:00 means midnight; windows may not wrap past midnight)"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(
                f"CallingWindow.timezone {self.timezone!r} is not a known IANA time zone "
                "(e.g. 'Asia/Shanghai')"
            ) from exc
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        for day in self.holidays:
            if isinstance(day, datetime) or not isinstance(day, date):
                raise ValueError(f"CallingWindow.holidays must hold dates, got {day!r}")
        for weekday in self.weekdays:
            if isinstance(weekday, bool) or weekday not in range(7):
                raise ValueError(f"CallingWindow.weekdays must be 0 (Monday) .. 6, got {weekday!r}")

    @property
    def zone(self) -> ZoneInfo:
        """The window's time zone (zoneinfo caches instances, so this is cheap)."""
        return ZoneInfo(self.timezone)

    def allows_date(self, day: date) -> bool:
        """True when ``day`` (a local date) is a calling day: an allowed weekday, no holiday."""
        return day.weekday() in self.weekdays and day not in self.holidays

    def allows_wall(self, wall: datetime) -> bool:
        """True when the naive local wall-clock reading ``wall`` lies inside the window."""
        if not self.allows_date(wall.date()):
            return False
        clock = wall.time()
        return clock >= self.start and (self.end == _MIDNIGHT or clock < self.end)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock reading of ``instant`` in ``zone``."""
    return instant.astimezone(zone).replace(tzinfo=None)


def in_window(window: CallingWindow, at: datetime) -> bool:
    """True when the aware instant ``at`` falls inside the window (read in the window's zone)."""
    return window.allows_wall(_wall(_utc(at, "at"), window.zone))


def _first_true(lo: datetime, hi: datetime, pred: Callable[[datetime], bool]) -> datetime:
    """The first whole-second UTC instant in (lo, hi] where ``pred`` holds (false at lo, true at
    hi, flipping once in between). Zone transitions fall on whole seconds."""
    low, high = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    while high - low > 1:
        mid = (low + high) // 2
        if pred(datetime.fromtimestamp(mid, _UTC)):
            high = mid
        else:
            low = mid
    return datetime.fromtimestamp(high, _UTC)


def _showing(zone: ZoneInfo, wall: datetime) -> datetime:
    """The UTC instant at which the clock in ``zone`` shows ``wall``: the first one if it shows
    twice (fall back); one just past the jump if it never does (spring forward), the jump itself
    being found by ``_transition``."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(_UTC)


def _transition(zone: ZoneInfo, lo: datetime, hi: datetime) -> datetime | None:
    """The instant in (lo, hi] at which the UTC offset changes, if it differs at the two ends."""
    before, after = lo.astimezone(zone).utcoffset(), hi.astimezone(zone).utcoffset()
    if before == after:
        return None
    return _first_true(lo, hi, lambda t: t.astimezone(zone).utcoffset() == after)


def _entries(window: CallingWindow, day: date) -> list[datetime]:
    """Every instant around local ``day`` at which the window may open: the clock reaching
    ``start`` (twice in a repeated fall-back hour), and any UTC-offset change that day (which
    may jump the clock forward over ``start`` or back into the window)."""
    zone = window.zone
    start = datetime.combine(day, window.start)
    found = [_showing(zone, start)]
    repeat = start.replace(tzinfo=zone, fold=1).astimezone(_UTC)
    if repeat > found[0] and _wall(repeat, zone) == start:
        found.append(repeat)
    day_begins = _showing(zone, datetime.combine(day, _MIDNIGHT))
    next_begins = _showing(zone, datetime.combine(day + timedelta(days=1), _MIDNIGHT))
    jump = _transition(zone, day_begins - _SECOND, next_begins - _SECOND)
    if jump is not None:
        found.append(jump)
    return found


def next_window_start(window: CallingWindow, at: datetime) -> datetime:
    """The earliest instant >= ``at`` inside the window, in the window's time zone (``at`` itself,
    re-expressed in that zone, when it is already inside). Handles DST gaps and repeated hours.

    Raises ``NoCallingWindow`` (a ``ValueError``) when nothing opens within ``SEARCH_DAYS`` days.
    """
    start = _utc(at, "at")
    zone = window.zone
    if window.allows_wall(_wall(start, zone)):
        return start.astimezone(zone)
    first_day = start.astimezone(zone).date()
    for offset in range(-1, SEARCH_DAYS + 1):  # from yesterday: clocks may jump back
        day = first_day + timedelta(days=offset)
        opens = [
            t for t in _entries(window, day) if t >= start and window.allows_wall(_wall(t, zone))
        ]
        if opens:
            return min(opens).astimezone(zone)
    raise NoCallingWindow(
        f"no calling window within {SEARCH_DAYS} days after {at.isoformat()} "
        f"(weekdays {sorted(window.weekdays)}, {len(window.holidays)} holidays, "
        f"{window.start}-{window.end} {window.timezone})"
    )


@dataclass(frozen=True)
class ContactPolicy:
    """How often one customer may be dialled."""

    max_attempts_per_week: int = 3  # dial attempts in any rolling 7 days
    min_gap: timedelta = timedelta(hours=4)  # between two attempts to the same customer

    def __post_init__(self) -> None:
        attempts = self.max_attempts_per_week
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"ContactPolicy.max_attempts_per_week must be >= 1, got {attempts!r}")
        if not isinstance(self.min_gap, timedelta) or self.min_gap < timedelta(0):
            raise ValueError(
                f"ContactPolicy.min_gap must be a timedelta >= 0, got {self.min_gap!r}"
            )


def _cap_limits(
    policy: ContactPolicy, previous_attempts: Sequence[datetime]
) -> list[tuple[datetime, str]]:
    """(earliest UTC instant a new attempt respects the cap, the cap's reason) per active cap.
    The weekly cap comes first, so it is named when both caps end at the same instant."""
    attempts = sorted(_utc(a, "previous attempt") for a in previous_attempts)
    limits = []
    if len(attempts) >= policy.max_attempts_per_week:
        limits.append((attempts[-policy.max_attempts_per_week] + WEEK, "weekly_cap"))
    if attempts:
        limits.append((attempts[-1] + policy.min_gap, "min_gap"))
    return limits


def _apply_caps(limits: list[tuple[datetime, str]], at: datetime) -> tuple[datetime, str | None]:
    """The earliest UTC instant >= ``at`` respecting every limit, and the cap that bound it."""
    earliest, reason = at, None
    for limit, name in limits:
        if limit > earliest:
            earliest, reason = limit, name
    return earliest, reason


def next_allowed_by_caps(
    policy: ContactPolicy, previous_attempts: Sequence[datetime], at: datetime
) -> datetime:
    """The earliest instant >= ``at`` at which a new attempt respects both the weekly cap and
    the min gap. Returns ``at`` itself when it already does, else an instant in ``at``'s zone."""
    start = _utc(at, "at")
    earliest, _ = _apply_caps(_cap_limits(policy, previous_attempts), start)
    return at if earliest == start else earliest.astimezone(at.tzinfo)


@dataclass(frozen=True)
class DialFacts:
    """Everything known about one customer right before a dial (read fresh from the database)."""

    now: datetime
    on_do_not_contact: bool
    consent: bool
    offer_valid_until: date | None  # None: no active offer
    previous_attempts: tuple[datetime, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "previous_attempts", tuple(self.previous_attempts))


@dataclass(frozen=True)
class DialDecision:
    """What to do with one customer now.

    ``reason`` is "ok" for a dial; for a wait it names the rule that forbids dialling *now*;
    ``blocked_by`` lists every rule that pushed ``not_before`` later, in the order applied.
    """

    verdict: Literal["dial", "wait", "skip"]
    reason: str
    not_before: datetime | None = None  # for "wait": window and caps both satisfied
    blocked_by: tuple[str, ...] = ()


def _window_reason(window: CallingWindow, at: datetime) -> str:
    """Why ``at`` (outside the window) is outside: "holiday" or "outside_window"."""
    return "holiday" if _wall(at, window.zone).date() in window.holidays else "outside_window"


def _earliest_dial(
    window: CallingWindow, policy: ContactPolicy, attempts: Sequence[datetime], now: datetime
) -> tuple[datetime, tuple[str, ...]]:
    """The earliest UTC instant >= ``now`` satisfying caps and window together, and the rules
    that moved it. Caps are fixed lower bounds, so this settles within two rounds."""
    limits = _cap_limits(policy, attempts)
    earliest, blocked = now, []
    while True:
        moved, reason = _apply_caps(limits, earliest)
        if reason is None:
            moved = next_window_start(window, earliest).astimezone(_UTC)
            if moved == earliest:
                return earliest, tuple(blocked)
            reason = _window_reason(window, earliest)
        if reason not in blocked:
            blocked.append(reason)
        earliest = moved


def decide_dial(window: CallingWindow, policy: ContactPolicy, facts: DialFacts) -> DialDecision:
    """Dial, wait or skip one customer. Checked in order: do-not-contact, consent, offer present,
    offer not expired (window-local date after ``valid_until``), then caps and window.

    Raises ``NoCallingWindow`` only when no window opens within ``SEARCH_DAYS`` days and the
    offer is still valid beyond that search (a configuration error, not a customer decision).
    """
    now = _utc(facts.now, "DialFacts.now")
    if facts.on_do_not_contact:
        return DialDecision("skip", "do_not_contact")
    if not facts.consent:
        return DialDecision("skip", "no_consent")
    valid_until = facts.offer_valid_until
    if valid_until is None:
        return DialDecision("skip", "no_offer")
    today = _wall(now, window.zone).date()
    if today > valid_until:
        return DialDecision("skip", "offer_expired")
    try:
        earliest, blocked = _earliest_dial(window, policy, facts.previous_attempts, now)
    except NoCallingWindow:
        if valid_until < today + timedelta(days=SEARCH_DAYS):
            return DialDecision("skip", "offer_expires_before_next_window")
        raise
    if not blocked:
        return DialDecision("dial", "ok")
    local = earliest.astimezone(window.zone)
    if local.date() > valid_until:
        return DialDecision("skip", "offer_expires_before_next_window", blocked_by=blocked)
    return DialDecision("wait", blocked[0], not_before=local, blocked_by=blocked)

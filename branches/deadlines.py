"""A lead's deadlines at its branch: claim it, then verify it, in time. Pure, no clock.

A lead assigned to a branch must be claimed within ``claim_within`` of its assignment, and
the offline verification finished within ``verify_within`` of the claim. Deadlines are
inclusive: a claim at the very instant it is due is on time; a lead is overdue from the
instant after. A lead closed or rerouted away owes its branch nothing more.

Every function judges the lead *as of* ``now``: a timestamp later than ``now`` is a step not
yet taken. So the same history gives what was known on any day, which the scorecards and
their tests rely on. All datetimes are timezone-aware (UTC); naive ones raise ``ValueError``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import pairwise

from core.vocabulary import RerouteReason

_DAY = timedelta(days=1)


def require_aware(field: str, value: datetime) -> None:
    """Raises ``ValueError`` unless ``value`` is a timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise ValueError(f"{field} must be a timezone-aware datetime (UTC), got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be a timezone-aware datetime (UTC), got naive {value!r}")


def describe_span(span: timedelta) -> str:
    """``2 天``, ``36 小时``, ``1 分钟``: the largest whole unit that says it exactly."""
    units = (("天", _DAY), ("小时", timedelta(hours=1)), ("分钟", timedelta(minutes=1)))
    for unit, size in units:
        if span % size == timedelta(0):
            return f"{span // size} {unit}"
    return f"{span.total_seconds():g} 秒"


def describe_time(moment: datetime) -> str:
    """``2026-12-05 10:00 UTC``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class DeadlinePolicy:
    """How long a branch has for each step."""

    claim_within: timedelta = 2 * _DAY  # from the assignment
    verify_within: timedelta = 2 * _DAY  # from the claim

    @classmethod
    def from_days(cls, claim_days: int, verify_days: int) -> DeadlinePolicy:
        """The policy from whole days, as a deployment's settings give them."""
        for field, value in (("claim_days", claim_days), ("verify_days", verify_days)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DeadlinePolicy {field} must be whole days >= 1, got {value!r}")
        return cls(claim_within=claim_days * _DAY, verify_within=verify_days * _DAY)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise ValueError(
                    f"DeadlinePolicy.{field.name} must be a positive timedelta, got {value!r}"
                )


@dataclass(frozen=True)
class LeadTimes:
    """When each step of a lead happened at one branch (None: not yet, or never).

    The assignment ends once, by ``closed_at`` (the lead got its final outcome here) or by
    ``rerouted_at`` (taken away to another branch), never both. Steps come in order: assigned,
    claimed, verified, then closed or rerouted.
    """

    assigned_at: datetime
    claimed_at: datetime | None = None
    verified_at: datetime | None = None
    closed_at: datetime | None = None
    rerouted_at: datetime | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None or field.name == "assigned_at":
                require_aware(f"LeadTimes.{field.name}", value)
        if self.verified_at is not None and self.claimed_at is None:
            raise ValueError("LeadTimes: verified_at without claimed_at (a lead is claimed first)")
        if self.closed_at is not None and self.rerouted_at is not None:
            raise ValueError(
                "LeadTimes: both closed_at and rerouted_at (an assignment ends once: closed "
                "at this branch or taken to another)"
            )
        steps = [("assigned_at", self.assigned_at), ("claimed_at", self.claimed_at),
                 ("verified_at", self.verified_at), ("closed_at", self.closed_at),
                 ("rerouted_at", self.rerouted_at)]
        taken = [(name, at) for name, at in steps if at is not None]
        for (before, earlier), (after, later) in pairwise(taken):
            if later < earlier:
                raise ValueError(
                    f"LeadTimes: {after} ({later.isoformat()}) is before {before} "
                    f"({earlier.isoformat()})"
                )

    def as_of(self, now: datetime) -> LeadTimes:
        """These times with every step later than ``now`` not yet taken."""
        require_aware("now", now)
        later = ("claimed_at", "verified_at", "closed_at", "rerouted_at")
        return dataclasses.replace(self, **{
            name: None for name in later if (at := getattr(self, name)) is not None and at > now
        })

    @property
    def ended_at(self) -> datetime | None:
        """When the branch's assignment ended (closed or rerouted away), or None."""
        return self.closed_at if self.closed_at is not None else self.rerouted_at


@dataclass(frozen=True)
class Overdue:
    """A deadline a lead's branch missed: the lead is due to be re-routed."""

    missed: RerouteReason  # CLAIM_OVERDUE or VERIFY_OVERDUE
    due: datetime
    reason: str  # in Chinese, for the lead's history and the branch's view


def claim_due(times: LeadTimes, policy: DeadlinePolicy) -> datetime:
    """When the branch must claim the lead by (inclusive)."""
    return times.assigned_at + policy.claim_within


def verify_due(times: LeadTimes, policy: DeadlinePolicy) -> datetime | None:
    """When the branch must finish the verification by (inclusive); None until it claims."""
    return None if times.claimed_at is None else times.claimed_at + policy.verify_within


def overdue(times: LeadTimes, policy: DeadlinePolicy, now: datetime) -> Overdue | None:
    """The deadline an open lead has missed at ``now``, or None (on time, verified, closed or
    already rerouted away)."""
    known = times.as_of(now)
    if known.ended_at is not None or known.verified_at is not None:
        return None
    if known.claimed_at is None:
        due = claim_due(known, policy)
        if now > due:
            return Overdue(
                RerouteReason.CLAIM_OVERDUE, due,
                f"分派后 {describe_span(policy.claim_within)}内未认领"
                f"（时限 {describe_time(due)}）",
            )
        return None
    due = known.claimed_at + policy.verify_within
    if now > due:
        return Overdue(
            RerouteReason.VERIFY_OVERDUE, due,
            f"认领后 {describe_span(policy.verify_within)}内未完成核实"
            f"（时限 {describe_time(due)}）",
        )
    return None


def _judge(done_at: datetime | None, due: datetime, ended_at: datetime | None,
           now: datetime) -> bool | None:
    """On time, late, or not judged yet; the times are known as of ``now``."""
    if done_at is not None:
        return done_at <= due
    stopped = now if ended_at is None else ended_at  # the branch's clock stops when it ends
    return False if stopped > due else None


def claimed_on_time(times: LeadTimes, policy: DeadlinePolicy, now: datetime) -> bool | None:
    """Whether the branch claimed the lead in time, as of ``now``.

    True: claimed by the deadline. False: claimed late, or the deadline passed unclaimed
    while the lead was still the branch's. None: not judged yet (unclaimed and not yet due),
    or the lead was closed or taken away before it was due.
    """
    known = times.as_of(now)
    return _judge(known.claimed_at, claim_due(known, policy), known.ended_at, now)


def verified_on_time(times: LeadTimes, policy: DeadlinePolicy, now: datetime) -> bool | None:
    """Whether the branch finished the verification in time, as of ``now``.

    None when the lead was never claimed (the claim is what was late), when it is not yet
    due, or when the lead was closed (e.g. the customer declined) or taken away before it
    was due; otherwise as ``claimed_on_time``.
    """
    known = times.as_of(now)
    due = verify_due(known, policy)
    if due is None:
        return None
    return _judge(known.verified_at, due, known.ended_at, now)

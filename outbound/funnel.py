"""The campaign funnel: how far each customer got, and why the others stopped. Pure functions.

The unit is the customer, not the attempt: a customer dialled three times who answered once
counts once at ``answered``. A customer reaches a stage when any of their attempts did
(``applied`` means an agent recorded ``agent_outcome == "applied"``). Stages are counted
honestly, each on its own: a later stage is not assumed to imply an earlier one, so a funnel
built from inconsistent records can show a later stage larger than an earlier one.

A customer who never reached ``transferred`` gets one drop-off reason (``DROP_OFF_REASONS``),
read from their most informative attempt: the latest answered one, else the latest one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from core.vocabulary import AgentOutcome, DialOutcome

STAGES = (
    "dialed", "answered", "right_person", "disclosure_played", "offer_heard", "interested",
    "transferred", "agent_connected", "applied",
)
OUTCOMES = tuple(DialOutcome)
AGENT_OUTCOMES = tuple(AgentOutcome)
DROP_OFF_REASONS = (
    "not_interested", "already_has_loan", "opt_out", "busy_callback", "wrong_person",
    "voicemail", "no_answer", "hung_up_mid_offer", "other",
)
ALL = "all"  # the key of the whole campaign in ``funnel()``'s answer
NO_BRANCH = "(none)"  # the ``by_branch`` key of customers without a branch

_REASON_BY_OUTCOME = {
    "not_interested": "not_interested",
    "already_has_loan": "already_has_loan",
    "opt_out": "opt_out",
    "do_not_contact": "opt_out",  # the call ended on a do-not-contact request
    "callback": "busy_callback",
    "wrong_person": "wrong_person",
    "voicemail": "voicemail",
    "no_answer": "no_answer",
    "busy": "no_answer",
    "declined": "no_answer",
}


@dataclass(frozen=True)
class AttemptFacts:
    """One dial attempt of a campaign, as the report sees it."""

    campaign_id: str
    customer_id: str
    variant: str  # script variant, e.g. "A" / "B"
    attempt_no: int  # 1, 2, ... per customer
    region: str
    branch: str | None  # branch the handoff was routed to (or the customer's nearest)
    started_at: datetime  # aware
    ended_at: datetime | None
    outcome: str  # one of OUTCOMES
    answered: bool = False
    right_person: bool = False
    disclosure_played: bool = False
    offer_heard: bool = False
    hung_up_mid_offer: bool = False
    interested: bool = False
    transferred: bool = False
    agent_connected: bool = False
    agent_outcome: str | None = None  # one of AGENT_OUTCOMES
    first_claim_s: float | None = None  # seconds from handoff created to first agent claim

    def __post_init__(self) -> None:
        for name in ("started_at", "ended_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"AttemptFacts.{name} must be timezone-aware, got {value!r}")

    def reached(self, stage: str) -> bool:
        """True when this attempt reached ``stage`` (one of ``STAGES``)."""
        if stage == "dialed":
            return True
        if stage == "applied":
            return self.agent_outcome == "applied"
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r} (known: {', '.join(STAGES)})")
        return bool(getattr(self, stage))


@dataclass
class FunnelCounts:
    """Customers per stage, attempts, and drop-off reasons of one variant (or of all)."""

    stages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    attempts: int = 0
    drop_offs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_OFF_REASONS, 0))
    attempt_stages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))

    @property
    def customers(self) -> int:
        """Customers dialled at least once."""
        return self.stages["dialed"]

    def conversion(self, stage_from: str = "dialed", stage_to: str = "transferred") -> float | None:
        """Customers at ``stage_to`` over customers at ``stage_from``; None when none reached
        ``stage_from``."""
        for stage in (stage_from, stage_to):
            if stage not in self.stages:
                raise ValueError(f"unknown stage {stage!r} (known: {', '.join(STAGES)})")
        base = self.stages[stage_from]
        return self.stages[stage_to] / base if base else None


@dataclass(frozen=True)
class SegmentCounts:
    """Customers dialled, answered, transferred and applied in one region or branch."""

    dialed: int = 0
    answered: int = 0
    transferred: int = 0
    applied: int = 0

    def rate(self, stage: str = "transferred") -> float | None:
        """Share of dialled customers that reached ``stage``; None when nobody was dialled."""
        return getattr(self, stage) / self.dialed if self.dialed else None


def _by_customer(facts: Iterable[AttemptFacts]) -> dict[tuple[str, str], list[AttemptFacts]]:
    """Attempts grouped by (campaign, customer), each group in dialling order."""
    groups: dict[tuple[str, str], list[AttemptFacts]] = defaultdict(list)
    for fact in facts:
        groups[(fact.campaign_id, fact.customer_id)].append(fact)
    for attempts in groups.values():
        attempts.sort(key=_dial_order)
    return dict(groups)


def _dial_order(fact: AttemptFacts) -> tuple[int, datetime]:
    return (fact.attempt_no, fact.started_at)


def customer_stages(attempts: Sequence[AttemptFacts]) -> set[str]:
    """The stages a customer reached: those reached by any of their attempts."""
    return {stage for stage in STAGES if any(attempt.reached(stage) for attempt in attempts)}


def most_informative(attempts: Sequence[AttemptFacts]) -> AttemptFacts:
    """The latest answered attempt, else the latest attempt."""
    ordered = sorted(attempts, key=_dial_order)
    answered = [attempt for attempt in ordered if attempt.answered]
    return (answered or ordered)[-1]


def drop_off_reason(attempts: Sequence[AttemptFacts]) -> str | None:
    """Why a customer stopped before ``transferred`` (one of ``DROP_OFF_REASONS``), or None
    when they were transferred. A stated outcome (opt-out, callback...) wins over a hang-up."""
    if any(attempt.transferred for attempt in attempts):
        return None
    attempt = most_informative(attempts)
    if attempt.outcome in _REASON_BY_OUTCOME:
        return _REASON_BY_OUTCOME[attempt.outcome]
    return "hung_up_mid_offer" if attempt.hung_up_mid_offer else "other"


def _count(attempts: Sequence[AttemptFacts]) -> FunnelCounts:
    """The funnel of one set of attempts."""
    counts = FunnelCounts()
    for customer_attempts in _by_customer(attempts).values():
        for stage in customer_stages(customer_attempts):
            counts.stages[stage] += 1
        reason = drop_off_reason(customer_attempts)
        if reason is not None:
            counts.drop_offs[reason] += 1
    for attempt in attempts:
        counts.attempts += 1
        for stage in STAGES:
            counts.attempt_stages[stage] += attempt.reached(stage)
    return counts


def funnel(facts: Iterable[AttemptFacts]) -> dict[str, FunnelCounts]:
    """Funnel counts per variant (sorted by name) and for the whole campaign under ``ALL``.

    A customer dialled with two variants counts once in each variant and once in ``ALL``.
    """
    facts = list(facts)
    by_variant: dict[str, list[AttemptFacts]] = defaultdict(list)
    for fact in facts:
        if fact.variant == ALL:
            raise ValueError(f"a script variant may not be called {ALL!r}: that key is the total")
        by_variant[fact.variant].append(fact)
    result = {variant: _count(by_variant[variant]) for variant in sorted(by_variant)}
    result[ALL] = _count(facts)
    return result


def _segment_of(attempts: Sequence[AttemptFacts], key: Callable[[AttemptFacts], str | None],
                default: str) -> str:
    """A customer's segment: from their latest transferred attempt, else their latest attempt
    that names one."""
    ordered = sorted(attempts, key=lambda a: (a.transferred, *_dial_order(a)))
    for attempt in reversed(ordered):
        value = key(attempt)
        if value:
            return value
    return default


def _segments(facts: Iterable[AttemptFacts], key: Callable[[AttemptFacts], str | None],
              default: str) -> dict[str, SegmentCounts]:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(
        ("dialed", "answered", "transferred", "applied"), 0))
    for attempts in _by_customer(facts).values():
        reached = customer_stages(attempts)
        row = totals[_segment_of(attempts, key, default)]
        for stage in row:
            row[stage] += stage in reached
    return {name: SegmentCounts(**totals[name]) for name in sorted(totals)}


def by_region(facts: Iterable[AttemptFacts]) -> dict[str, SegmentCounts]:
    """Customers dialled, answered, transferred and applied per region (sorted by name)."""
    return _segments(facts, lambda fact: fact.region, "(unknown)")


def by_branch(facts: Iterable[AttemptFacts]) -> dict[str, SegmentCounts]:
    """The same per branch; customers whose attempts name no branch are under ``NO_BRANCH``."""
    return _segments(facts, lambda fact: fact.branch, NO_BRANCH)


def time_to_first_claim(facts: Iterable[AttemptFacts]) -> list[float]:
    """Seconds from handoff to first agent claim of every attempt that has one, ascending."""
    return sorted(fact.first_claim_s for fact in facts if fact.first_claim_s is not None)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks, as
    numpy's default; None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return percentile(values, 50)

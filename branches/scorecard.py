"""Branch scorecards over a rolling window, and which branches are suspended. Pure, no clock.

A branch's scorecard counts the leads assigned to it in the ``window_days`` before ``now``
(``now - window < assigned_at <= now``: a lead exactly ``window_days`` old has aged out):

- on-time claim rate: claimed in time / leads whose claim is judged;
- on-time verification rate: verified in time / claimed leads whose verification is judged;
- conversion rate: applied / leads closed with a final outcome (``FINAL_LEAD_OUTCOMES``).

A step is judged once it is done, or once its deadline passed while the lead was still the
branch's (see ``deadlines.claimed_on_time``); a lead still inside its deadline counts neither
for nor against. A branch whose claim or verification rate is below the policy's minimum is
suspended: it gets no new leads, which go to the next nearest branch. A rate is held against
a branch only over at least ``min_judged`` judged leads. Suspension is not sticky: as late
leads age out of the window and on-time ones come in, the rates rise and it lifts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from branches.deadlines import (
    DeadlinePolicy,
    LeadTimes,
    claimed_on_time,
    require_aware,
    verified_on_time,
)
from core.vocabulary import FINAL_LEAD_OUTCOMES, LeadOutcome


@dataclass(frozen=True)
class LeadFact:
    """One lead's time at a branch, as the scorecard sees it."""

    times: LeadTimes  # rerouted_at set: taken away from this branch
    outcome: LeadOutcome | None = None  # the furthest the branch got; final ones need closed_at

    def __post_init__(self) -> None:
        if not isinstance(self.times, LeadTimes):
            raise ValueError(f"LeadFact.times must be LeadTimes, got {self.times!r}")
        if self.outcome is not None:
            object.__setattr__(self, "outcome", LeadOutcome(self.outcome))
        if self.outcome in FINAL_LEAD_OUTCOMES and self.times.closed_at is None:
            raise ValueError(f"LeadFact: final outcome {self.outcome} without closed_at")


def _count(field: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"ScorecardPolicy.{field} must be a whole number >= {minimum}, "
                         f"got {value!r}")


def _rate(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"ScorecardPolicy.{field} must be a rate from 0 to 1, got {value!r}")
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ValueError(f"ScorecardPolicy.{field} must be a rate from 0 to 1, got {value!r}")


@dataclass(frozen=True)
class ScorecardPolicy:
    """The window a scorecard covers and the rates a branch must keep to get new leads."""

    window_days: int = 30
    min_claim_rate: float = 0.8  # on-time claims / judged claims; below it: suspended
    min_verify_rate: float = 0.8  # on-time verifications / judged verifications
    min_judged: int = 10  # fewer judged leads than this: too little data to suspend on

    def __post_init__(self) -> None:
        _count("window_days", self.window_days, 1)
        _count("min_judged", self.min_judged, 1)
        _rate("min_claim_rate", self.min_claim_rate)
        _rate("min_verify_rate", self.min_verify_rate)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Scorecard:
    """How a branch did with the leads assigned to it in the window ending ``window_end``."""

    branch_id: str
    window_end: datetime
    window_days: int
    leads: int  # assigned in the window
    claims_judged: int
    claims_on_time: int
    verifications_judged: int
    verifications_on_time: int
    finished: int  # closed with a final outcome
    applied: int
    rerouted_away: int

    @property
    def window_start(self) -> datetime:
        """Leads assigned after this instant (not at it) are in the window."""
        return self.window_end - timedelta(days=self.window_days)

    @property
    def claimed_on_time_rate(self) -> float | None:
        """0..1, or None when no claim is judged yet."""
        return _ratio(self.claims_on_time, self.claims_judged)

    @property
    def verified_on_time_rate(self) -> float | None:
        """0..1, or None when no verification is judged yet."""
        return _ratio(self.verifications_on_time, self.verifications_judged)

    @property
    def conversion_rate(self) -> float | None:
        """Applied / finished, 0..1, or None when no lead is finished yet."""
        return _ratio(self.applied, self.finished)


def scorecard(
    branch_id: str, facts: Iterable[LeadFact], now: datetime, deadlines: DeadlinePolicy,
    policy: ScorecardPolicy,
) -> Scorecard:
    """The branch's scorecard at ``now``, from the facts of the leads it was ever assigned
    (those outside the window are skipped; steps later than ``now`` are not yet taken)."""
    require_aware("now", now)
    start = now - timedelta(days=policy.window_days)
    claims: list[bool] = []
    verifications: list[bool] = []
    leads = finished = applied = rerouted = 0
    for fact in facts:
        if not start < fact.times.assigned_at <= now:
            continue
        leads += 1
        known = fact.times.as_of(now)
        if (claimed := claimed_on_time(fact.times, deadlines, now)) is not None:
            claims.append(claimed)
        if (verified := verified_on_time(fact.times, deadlines, now)) is not None:
            verifications.append(verified)
        if fact.outcome in FINAL_LEAD_OUTCOMES and known.closed_at is not None:
            finished += 1
            applied += fact.outcome == LeadOutcome.APPLIED
        rerouted += known.rerouted_at is not None
    return Scorecard(
        branch_id=branch_id, window_end=now, window_days=policy.window_days, leads=leads,
        claims_judged=len(claims), claims_on_time=sum(claims),
        verifications_judged=len(verifications), verifications_on_time=sum(verifications),
        finished=finished, applied=applied, rerouted_away=rerouted,
    )


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f}".rstrip("0").rstrip(".") + "%"


def suspended(card: Scorecard, policy: ScorecardPolicy) -> str | None:
    """Why the branch gets no new leads now (in Chinese, for the branch's pages and the leads'
    history), or None when it may.

    A rate below its minimum suspends the branch, unless fewer than ``min_judged`` leads
    are judged for it; a rate exactly at the minimum is good enough.
    """
    reasons = []
    for name, on_time, judged, minimum in (
        ("认领", card.claims_on_time, card.claims_judged, policy.min_claim_rate),
        ("核实", card.verifications_on_time, card.verifications_judged,
         policy.min_verify_rate),
    ):
        if judged >= policy.min_judged and on_time / judged < minimum:
            reasons.append(
                f"按时{name}率 {_percent(on_time / judged)}（近 {card.window_days} 天考核 "
                f"{judged} 条，按时 {on_time} 条），低于最低要求 {_percent(minimum)}"
            )
    return "；".join(reasons) or None


def suspensions(cards: Iterable[Scorecard], policy: ScorecardPolicy) -> dict[str, str]:
    """Branch id -> why it is suspended, for the suspended branches among ``cards``:
    what ``lead_routing.choose_branch`` takes."""
    return {card.branch_id: reason for card in cards if (reason := suspended(card, policy))}


def scorecards(
    facts_by_branch: Mapping[str, Iterable[LeadFact]], now: datetime, deadlines: DeadlinePolicy,
    policy: ScorecardPolicy,
) -> dict[str, Scorecard]:
    """Branch id -> its scorecard at ``now``."""
    return {
        branch_id: scorecard(branch_id, facts, now, deadlines, policy)
        for branch_id, facts in facts_by_branch.items()
    }

"""The deadlines and scorecard rules a deployment sets for branch leads, read from its settings
(``OFFERCALL_LEAD_*`` and ``OFFERCALL_SCORECARD_*``; the 医保贷 programme's 2 + 2 days by
default)."""

from __future__ import annotations

from dataclasses import dataclass

from branches.deadlines import DeadlinePolicy
from branches.leads import DEFAULT_DEADLINES, DEFAULT_SCORECARD
from branches.scorecard import ScorecardPolicy
from core.settings import Settings, SettingsError


@dataclass(frozen=True)
class LeadPolicies:
    """How long a branch has for each step, and the rates it must keep to get new leads."""

    deadlines: DeadlinePolicy = DEFAULT_DEADLINES
    scorecard: ScorecardPolicy = DEFAULT_SCORECARD


def lead_policies(settings: Settings) -> LeadPolicies:
    """The policies ``settings`` give; a ``SettingsError`` naming the variable when one is out
    of range (days and counts from 1, rates from 0 to 100 %)."""
    try:
        deadlines = DeadlinePolicy.from_days(settings.lead_claim_days, settings.lead_verify_days)
    except ValueError as exc:
        raise SettingsError(
            f"OFFERCALL_LEAD_CLAIM_DAYS and OFFERCALL_LEAD_VERIFY_DAYS must be whole days >= 1 ({exc})"
        ) from None
    checks = (("OFFERCALL_SCORECARD_WINDOW_DAYS", settings.scorecard_window_days, 1, None),
              ("OFFERCALL_SCORECARD_MIN_JUDGED", settings.scorecard_min_judged, 1, None),
              ("OFFERCALL_SCORECARD_MIN_CLAIM_PCT", settings.scorecard_min_claim_pct, 0, 100),
              ("OFFERCALL_SCORECARD_MIN_VERIFY_PCT", settings.scorecard_min_verify_pct, 0, 100))
    for name, value, low, high in checks:
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f">= {low}"
            raise SettingsError(f"{name} must be {span}, got {value}")
    return LeadPolicies(deadlines, ScorecardPolicy(
        window_days=settings.scorecard_window_days,
        min_claim_rate=settings.scorecard_min_claim_pct / 100,
        min_verify_rate=settings.scorecard_min_verify_pct / 100,
        min_judged=settings.scorecard_min_judged,
    ))

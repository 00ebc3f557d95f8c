"""A campaign's branch leads counted per branch for the report: how many each branch got, how
far its account managers took them (claimed, contacted, verified) and how they ended
(applied, declined, unreachable, or still open). Pure: the facts are read elsewhere."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

ALL_BRANCHES = "all"

LEAD_STAGES = ("leads", "claimed", "contacted", "verified", "applied", "declined", "unreachable",
               "open", "rerouted")
"""The counts, in the report's column order."""

LEAD_STAGE_NAMES = {
    "leads": "线索 (leads)", "claimed": "已认领 (claimed)", "contacted": "已联系 (contacted)",
    "verified": "已核实 (verified)", "applied": "已申请 (applied)", "declined": "已拒绝 (declined)",
    "unreachable": "联系不上 (unreachable)", "open": "跟进中 (open)",
    "rerouted": "转来 (rerouted in)",
}


@dataclass(frozen=True)
class LeadFact:
    """One lead of the campaign's customers, as it stands at the branch it is with now."""

    branch_id: str
    branch_name: str
    claimed: bool
    contacted: bool
    verified: bool
    outcome: str | None
    """``applied``, ``declined`` or ``unreachable`` once closed; else None."""
    rerouted: bool
    """The lead came to this branch from another (a missed deadline or a suspension)."""


@dataclass
class BranchLeadCounts:
    """One branch's (or every branch's) lead counts, by stage."""

    name: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEAD_STAGES, 0))

    def add(self, fact: LeadFact) -> None:
        """Counts ``fact`` in every stage it reached."""
        reached = {"leads": True, "claimed": fact.claimed, "contacted": fact.contacted,
                   "verified": fact.verified, "open": fact.outcome is None,
                   "rerouted": fact.rerouted}
        if fact.outcome in ("applied", "declined", "unreachable"):
            reached[fact.outcome] = True
        for stage, yes in reached.items():
            self.counts[stage] += int(yes)


def leads_by_branch(facts: Iterable[LeadFact]) -> dict[str, BranchLeadCounts]:
    """Branch id -> its counts (branches by id), then ``ALL_BRANCHES`` -> every lead's."""
    everyone = BranchLeadCounts("全部 (all)")
    branches: dict[str, BranchLeadCounts] = {}
    for fact in facts:
        branches.setdefault(fact.branch_id, BranchLeadCounts(fact.branch_name)).add(fact)
        everyone.add(fact)
    return {**dict(sorted(branches.items())), ALL_BRANCHES: everyone}

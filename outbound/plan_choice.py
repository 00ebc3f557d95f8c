"""Choosing each customer's contact from predicted response, and the A/B arms that judge it.
Pure.

A campaign's customers are split, by a hash of campaign and customer, into the ``model`` arm
and the ``fixed`` arm. A ``fixed`` customer gets the campaign's plan as the manager wrote it
and the variant the campaign's weights gave. A ``model`` customer gets the candidate
(channel, hour, script variant) the model scores highest: the plan's first step becomes that
channel (the step it swaps with keeps its place and wait), its steps are taken from that local
hour, and they hear that variant. The report compares the arms' response with the usual A/B
statistics (``outbound.abtest``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import product
from zoneinfo import ZoneInfo

from outbound.contact_plans import ContactPlan
from outbound.response_features import CHANNELS, SLOTS, Candidate

ARMS = ("fixed", "model")
"""The control first, as ``outbound.abtest.compare`` takes it."""
SLOT_HOURS = 2
"""A step placed at an hour may be taken until this many hours after it."""


@dataclass(frozen=True)
class Choice:
    """The model's pick for one customer, and its predicted chance of a response."""

    channel: str
    hour: int
    variant: str
    score: float

    def to_json(self) -> dict[str, object]:
        return {"channel": self.channel, "hour": self.hour, "variant": self.variant,
                "score": round(self.score, 4)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Choice:
        return cls(str(data["channel"]), int(data["hour"]), str(data["variant"]),  # type: ignore[call-overload]
                   float(data["score"]))  # type: ignore[arg-type]


def arm_of(campaign_id: str, customer_id: str, model_share: float) -> str:
    """``model`` for a stable ``model_share`` of a campaign's customers, else ``fixed``."""
    if not 0 <= model_share <= 1:
        raise ValueError(f"the model's share is 0 to 1, got {model_share}")
    digest = hashlib.sha256(f"arm:{campaign_id}:{customer_id}".encode()).digest()
    return "model" if int.from_bytes(digest[:8], "big") / 2**64 < model_share else "fixed"


def plan_channels(plan: ContactPlan) -> tuple[str, ...]:
    """The channels of ``plan`` a model can choose between, in plan order."""
    seen: list[str] = []
    for channel in plan.channels:
        if channel in CHANNELS and channel not in seen:
            seen.append(channel)
    return tuple(seen)


def candidates(channels: Sequence[str], variants: Sequence[str]) -> list[Candidate]:
    """Every (channel, slot, variant) a customer could be contacted with."""
    if not channels or not variants:
        raise ValueError("a choice needs at least one channel and one variant")
    return [Candidate(c, h, v) for c, h, v in product(channels, SLOTS, variants)]


def best(scores: Sequence[float], options: Sequence[Candidate]) -> Choice:
    """The highest-scoring candidate (the first listed among equals)."""
    if len(scores) != len(options) or not options:
        raise ValueError("one score per candidate, and at least one")
    index = max(range(len(options)), key=lambda i: (scores[i], -i))
    option = options[index]
    return Choice(option.channel, option.hour, option.variant, float(scores[index]))


def personal_plan(plan: ContactPlan, channel: str) -> ContactPlan:
    """``plan`` with its first step on ``channel``: the first step of that channel swaps
    channel (and template) with the plan's first step; waits stay where they were."""
    steps = list(plan.steps)
    index = next((i for i, step in enumerate(steps) if step.channel == channel), None)
    if index is None:
        raise ValueError(f"the plan has no {channel} step")
    if index:
        first, chosen = steps[0], steps[index]
        steps[0] = replace(first, channel=chosen.channel, template=chosen.template)
        steps[index] = replace(chosen, channel=first.channel, template=first.template)
    return replace(plan, steps=tuple(steps))


def at_hour(now: datetime, hour: int, timezone: str) -> datetime:
    """``now`` if it is within :data:`SLOT_HOURS` after ``hour`` local time, else the next
    local ``hour:00``."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    local = now.astimezone(ZoneInfo(timezone))
    start = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if start <= local < start + timedelta(hours=SLOT_HOURS):
        return now
    if local >= start:
        start = (start + timedelta(days=1)).replace(hour=hour)
    return start.astimezone(now.tzinfo)

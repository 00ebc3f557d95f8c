"""Contact plans: a campaign reaches each customer in steps over channels, with waits between
them, and stops once the customer has answered one way or the other. For example (主动授信)::

    SMS on day 1 -> app pop-up -> call on day 2 -> branch lead on day 5
    stop on: opt-out, application, refusal

Pure rules: which step a customer is due next, when, or why their plan has stopped. No I/O
and no clock; instants are timezone-aware. A step's own rules still apply when it is taken
(the contact window, the do-not-contact list, a call's retries).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from outbound.sms_rules import TEMPLATES

CHANNELS = ("sms", "popup", "call", "branch_lead")
"""What a step does: text the customer, queue an app pop-up, call them (with the campaign's
retries), or hand them to the nearest branch to follow up in person."""
STOP_REASONS = ("opt_out", "applied", "refused")
"""What ends a customer's plan early: they opted out (on any channel), applied (asked for a
human or for the loan), or said they are not interested."""
MAX_STEPS = 10
MAX_WAIT = timedelta(days=60)


class PlanError(ValueError):
    """A contact plan that cannot be used, with the reason."""


@dataclass(frozen=True)
class PlanStep:
    """One step: ``channel`` after ``wait`` (since the previous step was taken; the first step's
    since the customer joined the campaign), with a message ``template`` for a text
    (``outbound.sms_rules.TEMPLATES``; the offer by default)."""

    channel: str
    wait: timedelta = timedelta(0)
    template: str | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise PlanError(f"a step's channel is one of {', '.join(CHANNELS)}, "
                            f"got {self.channel!r}")
        if not timedelta(0) <= self.wait <= MAX_WAIT:
            raise PlanError(f"a step waits 0 to {MAX_WAIT.days} days, got "
                            f"{self.wait / timedelta(days=1):g} days")
        if self.template is not None and self.channel != "sms":
            raise PlanError("only a text message step has a template")
        if self.template is not None and self.template not in TEMPLATES:
            raise PlanError(f"unknown message template {self.template!r}; "
                            f"one of {', '.join(TEMPLATES)}")


@dataclass(frozen=True)
class ContactPlan:
    """The steps, in order, and what stops them."""

    steps: tuple[PlanStep, ...]
    stop_on: frozenset[str] = field(default_factory=lambda: frozenset(STOP_REASONS))

    def __post_init__(self) -> None:
        if not 1 <= len(self.steps) <= MAX_STEPS:
            raise PlanError(f"a plan has 1 to {MAX_STEPS} steps, got {len(self.steps)}")
        unknown = set(self.stop_on) - set(STOP_REASONS)
        if unknown:
            raise PlanError(f"unknown stop conditions {sorted(unknown)}; "
                            f"use {', '.join(STOP_REASONS)}")
        if "opt_out" not in self.stop_on:
            raise PlanError("an opt-out always stops the plan")
        object.__setattr__(self, "stop_on", frozenset(self.stop_on))

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(step.channel for step in self.steps)

    @classmethod
    def from_json(cls, data: Any) -> ContactPlan:
        """Reads ``{"steps": [{"channel", "wait_hours"?, "template"?}, …], "stop_on"?: […]}``;
        anything else is a :class:`PlanError` naming what is wrong."""
        if not isinstance(data, Mapping):
            raise PlanError("a contact plan is a JSON object with its steps")
        unknown = set(data) - {"steps", "stop_on"}
        if unknown:
            raise PlanError(f"unknown plan settings: {', '.join(sorted(unknown))}")
        steps = data.get("steps")
        if not isinstance(steps, list):
            raise PlanError("a contact plan's steps are a list")
        stop_on = data.get("stop_on", list(STOP_REASONS))
        if not isinstance(stop_on, list) or not all(isinstance(s, str) for s in stop_on):
            raise PlanError("stop_on is a list of stop conditions")
        return cls(tuple(_step(number, step) for number, step in enumerate(steps, 1)),
                   frozenset(stop_on))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, as :meth:`from_json` reads it."""
        return {
            "steps": [{"channel": s.channel, "wait_hours": s.wait / timedelta(hours=1),
                       **({"template": s.template} if s.template else {})} for s in self.steps],
            "stop_on": sorted(self.stop_on),
        }


def _step(number: int, data: Any) -> PlanStep:
    if not isinstance(data, Mapping):
        raise PlanError(f"step {number} is not an object")
    unknown = set(data) - {"channel", "wait_hours", "template"}
    if unknown:
        raise PlanError(f"step {number}: unknown settings {', '.join(sorted(unknown))}")
    hours = data.get("wait_hours", 0)
    if isinstance(hours, bool) or not isinstance(hours, (int, float)):
        raise PlanError(f"step {number}: wait_hours is a number")
    template = data.get("template")
    if template is not None and not isinstance(template, str):
        raise PlanError(f"step {number}: template is a name")
    try:
        return PlanStep(str(data.get("channel")), timedelta(hours=hours), template)
    except PlanError as exc:
        raise PlanError(f"step {number}: {exc}") from None


CALLS_ONLY = ContactPlan((PlanStep("call"),))
"""A campaign without a plan calls, as campaigns always have."""


@dataclass(frozen=True)
class Signals:
    """What is known of the customer now, from every channel."""

    opted_out: bool = False
    applied: bool = False
    refused: bool = False
    step_running: bool = False
    """The last step taken has not finished (a call still being dialled or retried)."""


@dataclass(frozen=True)
class PlanDecision:
    """``take`` step ``step`` now, ``wait`` until ``not_before`` (for the step or for the
    running one to finish), ``stop`` for ``reason``, or ``done`` (every step taken)."""

    verdict: str
    step: int | None = None
    reason: str = ""
    not_before: datetime | None = None


def _stop_reason(plan: ContactPlan, signals: Signals) -> str | None:
    for reason, happened in (("opt_out", signals.opted_out), ("applied", signals.applied),
                             ("refused", signals.refused)):
        if happened and reason in plan.stop_on:
            return reason
    return None


def decide(plan: ContactPlan, next_step: int, last_taken_at: datetime | None,
           started_at: datetime, signals: Signals, now: datetime) -> PlanDecision:
    """What to do for one customer at ``now``: ``next_step`` is the index of the step not yet
    taken (``len(plan.steps)`` when all were), ``last_taken_at`` when the one before it was
    taken (None before the first), ``started_at`` when the campaign started."""
    for name, value in (("started_at", started_at), ("now", now), ("last_taken_at", last_taken_at)):
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")
    if not 0 <= next_step <= len(plan.steps):
        raise ValueError(f"next_step must be 0 to {len(plan.steps)}, got {next_step}")
    reason = _stop_reason(plan, signals)
    if reason is not None:
        return PlanDecision("stop", reason=reason)
    if signals.step_running:
        return PlanDecision("wait", reason="step_running")
    if next_step == len(plan.steps):
        return PlanDecision("done")
    step = plan.steps[next_step]
    due = (last_taken_at if last_taken_at is not None else started_at) + step.wait
    if now < due:
        return PlanDecision("wait", next_step, "waiting", due)
    return PlanDecision("take", next_step)

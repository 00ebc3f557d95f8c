"""Service-level rules for waiting tickets: when to widen, call back or re-route. Pure, no clock.

A live ticket starts at its branch. Unclaimed for ``widen_after(channel)`` seconds (or at
once when nobody at the branch can take it) it is offered to the whole pool; unclaimed for
``callback_after(channel)`` seconds it becomes a callback task and the bot promises a call
back. A branch callback task not claimed by its ``claim_deadline`` is re-routed to the pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from core.settings import Settings
from handoff.routing import CLAIMABLE, LIVE_CHANNELS, TicketFacts, _require_aware

ACTIONS = ("widen", "to_callback", "reroute_callback")


@dataclass(frozen=True)
class SlaPolicy:
    """Time limits, in seconds unless named otherwise."""

    voice_widen_s: float = 20  # a live call unclaimed this long goes to the whole pool
    voice_callback_s: float = 60  # ...and this long becomes a callback task
    chat_widen_s: float = 60
    chat_callback_s: float = 300
    callback_claim_s: float = 2 * 86400  # claim a callback task within this, or it goes to the pool
    callback_promise_min: int = 30  # "a manager will call you within N minutes"

    @classmethod
    def from_settings(cls, settings: Settings) -> SlaPolicy:
        """The limits a deployment set (``OFFERCALL_SLA_*``, ``OFFERCALL_CALLBACK_PROMISE_MIN``)."""
        return cls(
            voice_widen_s=settings.sla_voice_widen_s, voice_callback_s=settings.sla_voice_callback_s,
            chat_widen_s=settings.sla_chat_widen_s, chat_callback_s=settings.sla_chat_callback_s,
            callback_claim_s=settings.sla_callback_claim_s,
            callback_promise_min=settings.callback_promise_min,
        )

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"SlaPolicy.{field.name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"SlaPolicy.{field.name} must be a positive number, got {value!r}")
        if not isinstance(self.callback_promise_min, int):
            raise ValueError(
                "SlaPolicy.callback_promise_min must be whole minutes, "
                f"got {self.callback_promise_min!r}"
            )
        for channel in LIVE_CHANNELS:
            widen, callback = self.widen_after(channel), self.callback_after(channel)
            if widen >= callback:
                raise ValueError(
                    f"SlaPolicy: {channel}_widen_s ({widen:g}) must be less than "
                    f"{channel}_callback_s ({callback:g}), "
                    f"or the {channel} pool never gets a chance"
                )

    def widen_after(self, channel: str) -> float:
        """Seconds a live branch ticket on ``channel`` waits before the whole pool is offered it."""
        return getattr(self, f"{_channel(channel)}_widen_s")

    def callback_after(self, channel: str) -> float:
        """Seconds a live ticket on ``channel`` waits before it becomes a callback task."""
        return getattr(self, f"{_channel(channel)}_callback_s")


def _channel(channel: str) -> str:
    if channel not in LIVE_CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(LIVE_CHANNELS)}, got {channel!r}")
    return channel


@dataclass(frozen=True)
class SlaStep:
    """What to do with a waiting ticket now."""

    action: str  # ACTIONS
    reason: str  # human-readable, for logs and the supervisor's view
    breach: bool  # a time limit was missed (False: widened as nobody at the branch can take it)


def sla_step(
    ticket: TicketFacts, now: datetime, policy: SlaPolicy, *, branch_staffed: bool
) -> SlaStep | None:
    """The step a claimable ticket is due for at ``now``, or None. Limits are inclusive.

    ``branch_staffed`` says whether an online agent of the ticket's branch could take it
    (see ``routing.branch_staffed``); it is ignored for callback tasks.
    """
    _require_aware("now", now)
    if ticket.status not in CLAIMABLE:
        return None
    if ticket.kind == "callback":
        deadline = ticket.claim_deadline
        if ticket.tier == "branch" and deadline is not None and now >= deadline:
            late = (now - deadline).total_seconds()
            return SlaStep(
                "reroute_callback",
                f"callback task not claimed by its deadline ({late:.0f} s late): "
                "offered to the whole pool",
                breach=True,
            )
        return None
    waited = now - ticket.waiting_since
    callback_s = policy.callback_after(ticket.channel)
    widen_s = policy.widen_after(ticket.channel)
    if waited >= timedelta(seconds=callback_s):
        return SlaStep(
            "to_callback",
            f"live {ticket.channel} unclaimed for {waited.total_seconds():.0f} s "
            f"(limit {callback_s:g} s): turned into a callback task",
            breach=True,
        )
    if ticket.tier != "branch":
        return None
    if waited >= timedelta(seconds=widen_s):
        return SlaStep(
            "widen",
            f"live {ticket.channel} unclaimed for {waited.total_seconds():.0f} s "
            f"(limit {widen_s:g} s): offered to the whole pool",
            breach=True,
        )
    if ticket.branch_id is None:
        return SlaStep(
            "widen", "customer's region unknown: offered to the whole pool", breach=False
        )
    if not branch_staffed:
        return SlaStep(
            "widen",
            f"nobody online at branch {ticket.branch_id} can take it: offered to the whole pool",
            breach=False,
        )
    return None


def callback_deadline(now: datetime, policy: SlaPolicy) -> datetime:
    """When a callback task created at ``now`` must be claimed by."""
    _require_aware("now", now)
    return now + timedelta(seconds=policy.callback_claim_s)


def callback_promise(policy: SlaPolicy) -> str:
    """What the bot says when a live ticket becomes a callback task (voice and chat alike)."""
    return (
        f"现在客户经理都在忙，我们的客户经理会在{policy.callback_promise_min}分钟内给您回电，"
        "请保持电话畅通。再见！"
    )

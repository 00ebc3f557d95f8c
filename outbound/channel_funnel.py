"""The funnel across channels: how far a campaign's customers got on each channel (text,
app pop-up, call, in-app chat, branch lead), per script variant and per branch. Pure
functions: the facts are read elsewhere (``outbound.channel_funnel_data``).

The unit is the customer, as in the call funnel (``outbound.funnel``): a customer texted
twice counts once at ``sent``. Stages are counted honestly, each on its own: a delivered
message whose submission was never recorded counts at ``delivered`` but not at ``sent``.
Calls keep the call funnel's own meaning of each stage (``AttemptFacts.reached``).

Each channel's stages, in the report's column order, are ``CHANNEL_STAGES``:

- ``sms``: ``queued`` (a text written for the customer), ``sent`` (the gateway took it),
  ``delivered`` (the phone's delivery report), ``replied``, ``chatted`` (a chat the text's
  link opened, see below), ``opted_out`` (a reply that opted out, e.g. ``TD``).
- ``popup``: ``queued`` (created for the app to show), ``shown``, ``clicked``, ``dismissed``,
  ``chatted``.
- ``call``: ``CALL_STAGES``, a subset of the call funnel's.
- ``chat``: every in-app chat of the customer, whatever opened it: ``chatted``,
  ``interested`` (handed to an agent because they asked for one or accepted the offer),
  ``handed_off`` (handed to the agents' queue for any reason), ``applied`` (the agent
  recorded an application). The chat link is signed for the customer and the chat asks no
  identity question, so a chat says nothing about the right person: no such stage.
- ``branch_lead``: ``requested`` (the contact plan's branch step), ``assigned`` (a lead at a
  branch), ``claimed``, ``contacted``, ``verified``, ``applied``.

Which link opened a chat is not recorded (the chat token names only the customer), so a chat
is credited to the customer's latest text or pop-up click before it, at most
``OPENER_WINDOW`` earlier (``chat_openers``); a chat with neither counts only under ``chat``.

A customer counts in each variant they had on the channel, and at one branch per channel:
the branch of their record that reached the most stages (the latest of those), so the
branch rows of a variant add up to the variant's row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from outbound.funnel import ALL, NO_BRANCH, AttemptFacts

CALL_STAGES = ("dialed", "answered", "offer_heard", "interested", "transferred", "applied")
CHANNEL_STAGES: Mapping[str, tuple[str, ...]] = {
    "sms": ("queued", "sent", "delivered", "replied", "chatted", "opted_out"),
    "popup": ("queued", "shown", "clicked", "dismissed", "chatted"),
    "call": CALL_STAGES,
    "chat": ("chatted", "interested", "handed_off", "applied"),
    "branch_lead": ("requested", "assigned", "claimed", "contacted", "verified", "applied"),
}
CHANNELS = tuple(CHANNEL_STAGES)
"""The channels in the report's order."""
INTERESTED_HANDOFF_REASONS = frozenset({"customer_requested", "accepted_offer"})
"""Why the bot hands a customer to an agent when they are interested (``not_understood``, the
bot giving up, is not interest)."""
OPENER_WINDOW = timedelta(days=7)
"""A text or pop-up click opened a chat at most this long after it (a text's chat link lasts
seven days)."""


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True)
class SmsFact:
    """One of the campaign's texts to a customer (``direction == "out"``) or a reply ("in")."""

    customer_id: str
    variant: str
    branch: str | None
    direction: str  # "out" | "in"
    created_at: datetime
    submitted_at: datetime | None = None
    """out: when the gateway took it."""
    delivered: bool = False
    """out: the phone's delivery report came."""
    opted_out: bool = False
    """in: the reply put the customer on the do-not-contact list."""

    def __post_init__(self) -> None:
        if self.direction not in ("out", "in"):
            raise ValueError(f"direction must be 'out' or 'in', got {self.direction!r}")
        _aware("SmsFact.created_at", self.created_at)
        _aware("SmsFact.submitted_at", self.submitted_at)

    def reached(self) -> frozenset[str]:
        """The ``sms`` stages this message shows (``chatted`` comes from ``chat_openers``)."""
        if self.direction == "in":
            return frozenset({"replied", *(("opted_out",) if self.opted_out else ())})
        return frozenset({"queued", *(("sent",) if self.submitted_at is not None else ()),
                          *(("delivered",) if self.delivered else ())})

    def opened_at(self) -> datetime | None:
        """When the customer can have had its link: sent (or delivered); else None."""
        if self.direction != "out":
            return None
        return self.submitted_at or (self.created_at if self.delivered else None)


@dataclass(frozen=True)
class PopupFact:
    """One of the campaign's app pop-ups for a customer."""

    customer_id: str
    variant: str
    branch: str | None
    created_at: datetime
    shown_at: datetime | None = None
    clicked_at: datetime | None = None
    dismissed_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("created_at", "shown_at", "clicked_at", "dismissed_at"):
            _aware(f"PopupFact.{name}", getattr(self, name))

    def reached(self) -> frozenset[str]:
        """The ``popup`` stages this pop-up shows (``chatted`` comes from ``chat_openers``)."""
        marks = {"shown": self.shown_at, "clicked": self.clicked_at,
                 "dismissed": self.dismissed_at}
        return frozenset({"queued", *(stage for stage, at in marks.items() if at is not None)})


@dataclass(frozen=True)
class ChatFact:
    """One in-app chat of a campaign customer, with the handoffs it made."""

    customer_id: str
    variant: str
    branch: str | None
    started_at: datetime
    handoff_reasons: frozenset[str] = frozenset()
    """Why each of its handoffs was made (none: never handed to an agent)."""
    applied: bool = False
    """An agent closed one of its handoffs as ``applied``."""

    def __post_init__(self) -> None:
        _aware("ChatFact.started_at", self.started_at)

    def reached(self) -> frozenset[str]:
        """The ``chat`` stages this chat shows."""
        stages = {"chatted"}
        if self.handoff_reasons & INTERESTED_HANDOFF_REASONS:
            stages.add("interested")
        if self.handoff_reasons:
            stages.add("handed_off")
        if self.applied:
            stages.add("applied")
        return frozenset(stages)


@dataclass(frozen=True)
class BranchLeadFact:
    """A branch lead of a campaign customer, or the contact plan's request for one
    (``requested`` alone: the lead scan makes the lead later)."""

    customer_id: str
    variant: str
    branch: str | None
    at: datetime
    requested: bool = False
    assigned: bool = False
    claimed: bool = False
    contacted: bool = False
    verified: bool = False
    applied: bool = False

    def __post_init__(self) -> None:
        _aware("BranchLeadFact.at", self.at)

    def reached(self) -> frozenset[str]:
        """The ``branch_lead`` stages this lead shows."""
        return frozenset(stage for stage in CHANNEL_STAGES["branch_lead"] if getattr(self, stage))


@dataclass(frozen=True)
class ChannelFacts:
    """Everything one campaign's customers did, channel by channel."""

    sms: tuple[SmsFact, ...] = ()
    popups: tuple[PopupFact, ...] = ()
    calls: tuple[AttemptFacts, ...] = ()
    chats: tuple[ChatFact, ...] = ()
    leads: tuple[BranchLeadFact, ...] = ()


@dataclass(frozen=True)
class Touch:
    """What one record of one channel shows of one customer: the stages it reached."""

    channel: str
    customer_id: str
    variant: str
    branch: str | None
    at: datetime
    reached: frozenset[str]

    def __post_init__(self) -> None:
        if self.channel not in CHANNEL_STAGES:
            raise ValueError(f"unknown channel {self.channel!r} (known: {', '.join(CHANNELS)})")
        unknown = self.reached - set(CHANNEL_STAGES[self.channel])
        if unknown:
            raise ValueError(f"{self.channel} has no stage {', '.join(sorted(unknown))}")
        if self.variant == ALL:
            raise ValueError(f"a variant may not be called {ALL!r}: that key is the total")
        _aware("Touch.at", self.at)


@dataclass(frozen=True)
class _Opener:
    """A text sent or a pop-up clicked: something whose link can have opened a chat."""

    channel: str  # "sms" | "popup"
    variant: str
    branch: str | None
    at: datetime

    def recency(self) -> tuple[datetime, bool]:
        """Later is likelier to have opened the chat; at the same moment a click wins (it
        opens the chat at once)."""
        return (self.at, self.channel == "popup")


def chat_openers(facts: ChannelFacts, window: timedelta = OPENER_WINDOW) -> list[Touch]:
    """A ``chatted`` touch on ``sms`` or ``popup`` for each chat one of them opened: the
    customer's latest sent text or pop-up click at most ``window`` before the chat, with that
    text's or pop-up's variant and branch."""
    openers: dict[str, list[_Opener]] = defaultdict(list)
    for message in facts.sms:
        at = message.opened_at()
        if at is not None:
            openers[message.customer_id].append(
                _Opener("sms", message.variant, message.branch, at))
    for popup in facts.popups:
        if popup.clicked_at is not None:
            openers[popup.customer_id].append(
                _Opener("popup", popup.variant, popup.branch, popup.clicked_at))
    touches = []
    for chat in facts.chats:
        earlier = [opener for opener in openers.get(chat.customer_id, ())
                   if chat.started_at - window <= opener.at <= chat.started_at]
        if earlier:
            opener = max(earlier, key=_Opener.recency)
            touches.append(Touch(opener.channel, chat.customer_id, opener.variant, opener.branch,
                                 chat.started_at, frozenset({"chatted"})))
    return touches


def touches(facts: ChannelFacts, window: timedelta = OPENER_WINDOW) -> list[Touch]:
    """Every channel's records as touches, with the chats' openers."""
    found = [Touch("sms", m.customer_id, m.variant, m.branch, m.created_at, m.reached())
             for m in facts.sms]
    found += [Touch("popup", p.customer_id, p.variant, p.branch, p.created_at, p.reached())
              for p in facts.popups]
    found += [Touch("call", a.customer_id, a.variant, a.branch, a.started_at,
                    frozenset(stage for stage in CALL_STAGES if a.reached(stage)))
              for a in facts.calls]
    found += [Touch("chat", c.customer_id, c.variant, c.branch, c.started_at, c.reached())
              for c in facts.chats]
    found += [Touch("branch_lead", lead.customer_id, lead.variant, lead.branch, lead.at,
                    lead.reached()) for lead in facts.leads]
    return found + chat_openers(facts, window)


@dataclass
class StageCounts:
    """Customers touched, and customers per stage, of one row (a variant, a branch, all)."""

    stages: dict[str, int]
    customers: int = 0

    def add(self, reached: Iterable[str]) -> None:
        """Counts one customer, at every stage in ``reached``."""
        self.customers += 1
        for stage in reached:
            self.stages[stage] += 1

    def share(self, stage: str) -> float | None:
        """Customers at ``stage`` over customers touched; None for an empty row."""
        return self.stages[stage] / self.customers if self.customers else None


@dataclass(frozen=True)
class ChannelFunnel:
    """One channel's customers per stage: in all, per variant, per branch, and per both."""

    channel: str
    stages: tuple[str, ...]
    total: StageCounts
    by_variant: dict[str, StageCounts] = field(default_factory=dict)
    by_branch: dict[str, StageCounts] = field(default_factory=dict)
    by_variant_branch: dict[tuple[str, str], StageCounts] = field(default_factory=dict)
    """Keys (variant, branch), sorted."""


def branch_of(customer_touches: Sequence[Touch]) -> str:
    """A customer's branch on a channel: that of their touch naming one that reached the most
    stages (the latest of those); ``NO_BRANCH`` when none names one."""
    named = [t for t in customer_touches if t.branch]
    if not named:
        return NO_BRANCH
    best = max(named, key=lambda t: (len(t.reached), t.at))
    return best.branch or NO_BRANCH


def _channel_funnel(channel: str, channel_touches: Sequence[Touch]) -> ChannelFunnel:
    stages = CHANNEL_STAGES[channel]

    def empty() -> StageCounts:
        return StageCounts(dict.fromkeys(stages, 0))

    by_customer: dict[str, list[Touch]] = defaultdict(list)
    for touch in channel_touches:
        by_customer[touch.customer_id].append(touch)
    total = empty()
    by_variant: dict[str, StageCounts] = defaultdict(empty)
    by_branch: dict[str, StageCounts] = defaultdict(empty)
    cells: dict[tuple[str, str], StageCounts] = defaultdict(empty)
    for customer_touches in by_customer.values():
        branch = branch_of(customer_touches)
        per_variant: dict[str, set[str]] = defaultdict(set)
        for touch in customer_touches:
            per_variant[touch.variant] |= touch.reached
        everywhere = set().union(*per_variant.values())
        total.add(everywhere)
        by_branch[branch].add(everywhere)
        for variant, reached in per_variant.items():
            by_variant[variant].add(reached)
            cells[(variant, branch)].add(reached)
    return ChannelFunnel(channel, stages, total, dict(sorted(by_variant.items())),
                         dict(sorted(by_branch.items())), dict(sorted(cells.items())))


def channel_funnels(facts: ChannelFacts | Iterable[Touch],
                    window: timedelta = OPENER_WINDOW) -> dict[str, ChannelFunnel]:
    """Each channel's funnel, in ``CHANNELS`` order; a channel nobody was touched on is left
    out. A customer counts once per stage of a channel (in each variant they had there)."""
    found = touches(facts, window) if isinstance(facts, ChannelFacts) else list(facts)
    per_channel: dict[str, list[Touch]] = defaultdict(list)
    for touch in found:
        per_channel[touch.channel].append(touch)
    return {channel: _channel_funnel(channel, per_channel[channel])
            for channel in CHANNELS if per_channel.get(channel)}

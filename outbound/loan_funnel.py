"""The funnel to disbursement: from the campaign's contacts to the loan system's outcomes, per
channel, script variant and branch. Pure functions: the facts are read elsewhere
(``outbound.loan_funnel_data``, ``outbound.channel_funnel_data``).

Stages (``LOAN_STAGES``), each counted on its own, a customer once per stage:

- ``contacted``: the campaign reached out before the customer applied (or at all, for one who
  did not apply): a call dialled, a text sent, a pop-up shown, a chat, a branch lead contacted;
- ``applied``, ``approved`` (by the loan system's rules or a credit officer), ``disbursed``,
  ``declined``, ``withdrawn``: any of the customer's applications got there. Only
  applications made once the customer had joined the campaign count for it.

Attribution is last touch: each customer counts once, in one row per dimension, under the
channel of the campaign's latest contact before they applied (their best application: the one
that got furthest, the latest of those), with that contact's variant; a customer who applied
with no contact before counts under ``UNCONTACTED`` with their campaign variant, and one who
did not apply under their latest contact. Their branch is the one the loan system booked the
loan at, else the contact's branch. So the rows of each dimension add up to the total.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from outbound.channel_funnel import CHANNELS, ChannelFacts
from outbound.funnel import ALL, NO_BRANCH, AttemptFacts

LOAN_STAGES = ("contacted", "applied", "approved", "disbursed", "declined", "withdrawn")
UNCONTACTED = "(none)"
"""The channel of a customer who applied with no contact of the campaign before."""
_PROGRESS = ("applied", "approved", "disbursed")


@dataclass(frozen=True)
class Contact:
    """The campaign reaching one customer on one channel, at a moment."""

    channel: str
    customer_id: str
    variant: str
    branch: str | None
    at: datetime

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r} (known: {', '.join(CHANNELS)})")
        if self.at.utcoffset() is None:
            raise ValueError(f"Contact.at must be timezone-aware, got {self.at!r}")


@dataclass(frozen=True)
class LoanFact:
    """One loan application of a campaign customer, made once they had joined it."""

    customer_id: str
    application_id: str
    variant: str
    """The customer's variant in the campaign."""
    applied_at: datetime
    approved: bool = False
    """Approved by the rules or by a credit officer."""
    disbursed: bool = False
    declined: bool = False
    withdrawn: bool = False
    disbursed_fen: int = 0
    branch: str | None = None
    """The branch the loan system booked it at, when it said."""

    def __post_init__(self) -> None:
        if self.applied_at.utcoffset() is None:
            raise ValueError(f"LoanFact.applied_at must be timezone-aware, got {self.applied_at!r}")
        if self.variant == ALL:
            raise ValueError(f"a variant may not be called {ALL!r}: that key is the total")

    def reached(self) -> frozenset[str]:
        """The loan stages this application got to (``contacted`` is the contacts' to say)."""
        return frozenset({"applied", *(stage for stage in LOAN_STAGES[2:] if getattr(self, stage))})

    def progress(self) -> tuple[int, datetime]:
        """How far it got (applied < approved < disbursed), then how late it was made."""
        reached = self.reached()
        return (max(i for i, stage in enumerate(_PROGRESS) if stage in reached), self.applied_at)


def contacts(facts: ChannelFacts) -> list[Contact]:
    """Every time the campaign reached a customer: calls dialled, texts sent (or delivered),
    pop-ups shown (or clicked), chats, branch leads contacted."""
    found = [Contact("call", a.customer_id, a.variant, a.branch, a.started_at)
             for a in facts.calls]
    for message in facts.sms:
        sent_at = message.opened_at()
        if sent_at is not None:
            found.append(Contact("sms", message.customer_id, message.variant, message.branch,
                                 sent_at))
    for popup in facts.popups:
        seen_at = popup.shown_at or popup.clicked_at
        if seen_at is not None:
            found.append(Contact("popup", popup.customer_id, popup.variant, popup.branch, seen_at))
    found += [Contact("chat", c.customer_id, c.variant, c.branch, c.started_at)
              for c in facts.chats]
    found += [Contact("branch_lead", lead.customer_id, lead.variant, lead.branch, lead.at)
              for lead in facts.leads if lead.contacted]
    return found


@dataclass(frozen=True)
class Journey:
    """One customer as the funnel counts them: the row of each dimension, the stages reached
    and the money paid out."""

    customer_id: str
    channel: str
    variant: str
    branch: str
    reached: frozenset[str]
    disbursed_fen: int = 0


def journeys(found: Iterable[Contact], loans: Iterable[LoanFact]) -> list[Journey]:
    """Each customer's journey, attributed as the module docstring says, by customer id."""
    by_customer: dict[str, list[Contact]] = defaultdict(list)
    for contact in found:
        by_customer[contact.customer_id].append(contact)
    applications: dict[str, list[LoanFact]] = defaultdict(list)
    for loan in loans:
        applications[loan.customer_id].append(loan)
    result = []
    for customer_id in sorted(set(by_customer) | set(applications)):
        touches = sorted(by_customer.get(customer_id, ()), key=lambda c: c.at)
        own = applications.get(customer_id, [])
        if not own:
            last = touches[-1]
            result.append(Journey(customer_id, last.channel, last.variant,
                                  last.branch or NO_BRANCH, frozenset({"contacted"})))
            continue
        best = max(own, key=LoanFact.progress)
        before = [touch for touch in touches if touch.at <= best.applied_at]
        touch = before[-1] if before else None
        reached = frozenset().union(*(loan.reached() for loan in own))
        result.append(Journey(
            customer_id,
            touch.channel if touch else UNCONTACTED,
            touch.variant if touch else best.variant,
            best.branch or (touch.branch if touch else None) or NO_BRANCH,
            reached | ({"contacted"} if touch else set()),
            sum(loan.disbursed_fen for loan in own if loan.disbursed)))
    return result


@dataclass
class LoanCounts:
    """Customers, customers per stage, and yuan paid out (in fen) of one row."""

    stages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LOAN_STAGES, 0))
    customers: int = 0
    disbursed_fen: int = 0

    def add(self, journey: Journey) -> None:
        """Counts one customer."""
        self.customers += 1
        self.disbursed_fen += journey.disbursed_fen
        for stage in journey.reached:
            self.stages[stage] += 1

    def rate(self, stage: str, base: str = "contacted") -> float | None:
        """Customers at ``stage`` over customers at ``base``; None when none are."""
        return self.stages[stage] / self.stages[base] if self.stages[base] else None


@dataclass(frozen=True)
class LoanFunnel:
    """The funnel to disbursement in all and per channel, variant, branch, variant and branch."""

    total: LoanCounts
    by_channel: dict[str, LoanCounts]
    """In ``CHANNELS`` order, then ``UNCONTACTED``; only channels with customers."""
    by_variant: dict[str, LoanCounts]
    by_branch: dict[str, LoanCounts]
    by_variant_branch: dict[tuple[str, str], LoanCounts]


def loan_funnel(found: Iterable[Contact], loans: Iterable[LoanFact]) -> LoanFunnel:
    """The funnel of a campaign's contacts and its customers' applications."""
    total = LoanCounts()
    channels: dict[str, LoanCounts] = defaultdict(LoanCounts)
    variants: dict[str, LoanCounts] = defaultdict(LoanCounts)
    branches: dict[str, LoanCounts] = defaultdict(LoanCounts)
    cells: dict[tuple[str, str], LoanCounts] = defaultdict(LoanCounts)
    for journey in journeys(found, loans):
        for counts in (total, channels[journey.channel], variants[journey.variant],
                       branches[journey.branch], cells[(journey.variant, journey.branch)]):
            counts.add(journey)
    order = [*CHANNELS, UNCONTACTED]
    return LoanFunnel(total, {name: channels[name] for name in order if name in channels},
                      dict(sorted(variants.items())), dict(sorted(branches.items())),
                      dict(sorted(cells.items())))


def disbursement_counts(attempts: Iterable[AttemptFacts], loans: Iterable[LoanFact],
                        variants: Sequence[str]) -> dict[str, tuple[int, int]]:
    """``{variant: (dialled customers paid out, dialled customers)}`` for
    ``outbound.abtest.compare``: the A/B test on disbursement, as the call funnel's on
    transfer (a customer dialled with two variants counts in both). Paid out: an application
    of theirs made once the variant had been dialled to them was disbursed."""
    first_dial: dict[tuple[str, str], datetime] = {}
    for attempt in attempts:
        key = (attempt.variant, attempt.customer_id)
        first_dial[key] = min(first_dial.get(key, attempt.started_at), attempt.started_at)
    paid_after: dict[str, list[datetime]] = defaultdict(list)
    for loan in loans:
        if loan.disbursed:
            paid_after[loan.customer_id].append(loan.applied_at)
    counts = dict.fromkeys(variants, (0, 0))
    for (variant, customer_id), dialled_at in first_dial.items():
        if variant in counts:
            paid, dialled = counts[variant]
            converted = any(at >= dialled_at for at in paid_after.get(customer_id, ()))
            counts[variant] = (paid + converted, dialled + 1)
    return counts

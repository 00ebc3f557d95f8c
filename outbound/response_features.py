"""What response prediction knows of a customer and of one way to contact them. Pure.

A contact is a text, a pop-up or a call at a local hour with a script variant, and whether the
customer responded to it (see ``outbound.contact_history`` for how that is read from the
records). The model (``outbound.response_model``) sees, for a candidate contact, the
customer's profile, the candidate itself, and what came of the customer's earlier contacts:
only contacts *before* the one being predicted, so training never peeks at the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

CHANNELS = ("sms", "popup", "call")
"""The channels the model chooses between (a branch lead is not a contact the customer
answers there and then)."""
SLOTS = (9, 12, 15, 19)
"""Times of day, as local hours, a contact can be placed at: morning, midday, afternoon,
evening (inside the usual 09:00-20:00 calling window)."""
CATEGORICAL = ("channel", "variant", "segment", "region", "gender")
NUMERIC = ("hour", "amount_wan", "rate_min", "term_months", "prior_contacts",
           "prior_responses", "prior_on_channel", "prior_responses_on_channel", "days_since_last")
COLUMNS = CATEGORICAL + NUMERIC
NEVER = 999.0
"""``days_since_last`` of a customer never contacted before."""


@dataclass(frozen=True)
class Profile:
    """What the whitelist says of a customer and their offer."""

    customer_id: str
    segment: str
    region: str
    gender: str | None = None
    amount_yuan: int | None = None
    rate_min: float | None = None
    term_months: int | None = None


@dataclass(frozen=True)
class Contact:
    """One contact of a customer: ``channel`` at local ``hour`` with ``variant``."""

    customer_id: str
    channel: str
    at: datetime  # aware
    hour: int  # local hour of day, 0-23
    variant: str
    responded: bool

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"a contact's channel is one of {CHANNELS}, got {self.channel!r}")
        if self.at.utcoffset() is None:
            raise ValueError("a contact's time must be timezone-aware")
        if not 0 <= self.hour <= 23:
            raise ValueError(f"hour must be 0-23, got {self.hour}")


@dataclass(frozen=True)
class Candidate:
    """One way to contact a customer next."""

    channel: str
    hour: int
    variant: str


@dataclass(frozen=True)
class History:
    """A customer's earlier contacts, summed up."""

    contacts: int = 0
    responses: int = 0
    on_channel: tuple[tuple[str, int, int], ...] = ()
    """``(channel, contacts, responses)`` per channel used."""
    days_since_last: float = NEVER

    @classmethod
    def of(cls, earlier: Sequence[Contact], now: datetime) -> History:
        """The summary of ``earlier`` contacts as seen at ``now``."""
        if not earlier:
            return cls()
        per_channel = {c: (sum(1 for e in earlier if e.channel == c),
                           sum(1 for e in earlier if e.channel == c and e.responded))
                       for c in CHANNELS}
        last = max(e.at for e in earlier)
        return cls(len(earlier), sum(e.responded for e in earlier),
                   tuple((c, n, r) for c, (n, r) in per_channel.items() if n),
                   min(NEVER, max(0.0, (now - last).total_seconds() / 86400)))

    def channel_counts(self, channel: str) -> tuple[int, int]:
        for name, contacts, responses in self.on_channel:
            if name == channel:
                return contacts, responses
        return 0, 0


def features(profile: Profile, candidate: Candidate, history: History) -> dict[str, object]:
    """The model's inputs for ``candidate`` (a row of :data:`COLUMNS`; None is unknown)."""
    on_channel, responses_on_channel = history.channel_counts(candidate.channel)
    return {
        "channel": candidate.channel, "variant": candidate.variant,
        "segment": profile.segment or None, "region": profile.region or None,
        "gender": profile.gender or None, "hour": float(candidate.hour),
        "amount_wan": None if profile.amount_yuan is None else profile.amount_yuan / 10_000,
        "rate_min": profile.rate_min, "term_months": profile.term_months,
        "prior_contacts": float(history.contacts), "prior_responses": float(history.responses),
        "prior_on_channel": float(on_channel),
        "prior_responses_on_channel": float(responses_on_channel),
        "days_since_last": history.days_since_last,
    }


def training_rows(profiles: dict[str, Profile], contacts: Iterable[Contact]
                  ) -> tuple[list[dict[str, object]], list[int], list[str]]:
    """Each contact of a known customer as (features, label, customer): its history is the
    customer's contacts before it."""
    by_customer: dict[str, list[Contact]] = {}
    for contact in contacts:
        if contact.customer_id in profiles:
            by_customer.setdefault(contact.customer_id, []).append(contact)
    rows: list[dict[str, object]] = []
    labels: list[int] = []
    groups: list[str] = []
    for customer_id, own in by_customer.items():
        own.sort(key=lambda c: c.at)
        for index, contact in enumerate(own):
            history = History.of(own[:index], contact.at)
            rows.append(features(profiles[customer_id],
                                 Candidate(contact.channel, contact.hour, contact.variant),
                                 history))
            labels.append(int(contact.responded))
            groups.append(customer_id)
    return rows, labels, groups


def nearest_slot(hour: int) -> int:
    """The slot of :data:`SLOTS` nearest a local hour."""
    return min(SLOTS, key=lambda slot: (abs(slot - hour), slot))

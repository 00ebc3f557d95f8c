"""The loan outcome state machine, and what becomes of a batch of reported events. Pure.

An application moves through ``LoanStatus``::

    (nothing) -> applied -> auto_approved | approved -> disbursed
    applied, auto_approved, approved -> declined | withdrawn

``disbursed``, ``declined`` and ``withdrawn`` end it. Each status happens at most once, so an
application's history is a chain: its n-th event is step n (the repository makes (application,
step) unique, so two writers racing on one application cannot both extend it).

An event is:

- a duplicate (recorded nothing, answered as success) when its event id was recorded with the
  same report, or the application already has the same report under another id;
- refused, with the reason, when its id was recorded with another report, its customer is not
  on the whitelist or not the application's, its status is not a next step (``disbursed``
  before ``approved``, anything after the end), it happened before the step it follows, or in
  the future;
- else recorded, as the application's next step.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from core.vocabulary import LoanStatus, StrEnum
from lending.loan_events import LoanEvent

S = LoanStatus
APPROVALS = frozenset({S.AUTO_APPROVED, S.APPROVED})
ENDS = frozenset({S.DISBURSED, S.DECLINED, S.WITHDRAWN})
NEXT: Mapping[LoanStatus | None, frozenset[LoanStatus]] = MappingProxyType({
    None: frozenset({S.APPLIED}),
    S.APPLIED: frozenset({S.AUTO_APPROVED, S.APPROVED, S.DECLINED, S.WITHDRAWN}),
    S.AUTO_APPROVED: frozenset({S.DISBURSED, S.DECLINED, S.WITHDRAWN}),
    S.APPROVED: frozenset({S.DISBURSED, S.DECLINED, S.WITHDRAWN}),
    S.DISBURSED: frozenset(),
    S.DECLINED: frozenset(),
    S.WITHDRAWN: frozenset(),
})
"""The statuses that may follow each (None: an application with no event yet)."""
CLOCK_SKEW = timedelta(minutes=5)
"""An event may say it happened this far ahead of our clock (the loan system's clock)."""


class Judgement(StrEnum):
    """What becomes of one event."""

    RECORD = "record"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


@dataclass(frozen=True)
class Verdict:
    """What becomes of one event, and why when it is refused."""

    judgement: Judgement
    reason: str = ""


def refusal(current: LoanStatus | None, new: LoanStatus) -> str | None:
    """Why ``new`` may not follow ``current`` (None: it may)."""
    if new in NEXT[current]:
        return None
    if current is None:
        return f"{new} before applied: the loan system has reported no application yet"
    if current == new:
        return f"the application is already {current}"
    if current in ENDS:
        return f"{new} after {current}: the application has ended"
    if new == S.DISBURSED:
        return f"disbursed before approved: the application is only {current}"
    if current in APPROVALS and new in APPROVALS:
        return f"{new} after {current}: an application is approved once"
    return f"{new} after {current}: an application does not go back"


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def judge(event: LoanEvent, history: Sequence[LoanEvent], same_id: LoanEvent | None,
          now: datetime) -> Verdict:
    """What to do with ``event``, given its application's ``history`` (in step order) and the
    event recorded under its id, if any. The customer's existence is ``plan``'s check."""
    if same_id is not None:
        if same_id.same_report(event):
            return Verdict(Judgement.DUPLICATE)
        return Verdict(Judgement.REFUSED, f"event_id {event.event_id} was recorded before with "
                                          f"another report ({same_id.status}, "
                                          f"{_when(same_id.occurred_at)})")
    if history and history[0].customer_id != event.customer_id:
        return Verdict(Judgement.REFUSED, f"application {event.application_id} is another "
                                          "customer's")
    if any(earlier.same_report(event) for earlier in history):
        return Verdict(Judgement.DUPLICATE)
    current = history[-1] if history else None
    why = refusal(current.status if current else None, event.status)
    if why is not None:
        if current is not None and current.status == event.status:
            why += f" (since {_when(current.occurred_at)}); a different {event.status} is refused"
        return Verdict(Judgement.REFUSED, why)
    if current is not None and event.occurred_at < current.occurred_at:
        return Verdict(Judgement.REFUSED, f"out of order: {event.status} at "
                                          f"{_when(event.occurred_at)} is before {current.status} "
                                          f"at {_when(current.occurred_at)}")
    if event.occurred_at > now + CLOCK_SKEW:
        return Verdict(Judgement.REFUSED,
                       f"occurred_at {_when(event.occurred_at)} is in the future")
    return Verdict(Judgement.RECORD)


@dataclass(frozen=True)
class Step:
    """An event to record as its application's ``step``-th."""

    index: int
    event: LoanEvent
    step: int


@dataclass
class Plan:
    """What becomes of a batch: the events to record, the duplicates' and refusals' indexes
    (refusals with their reasons), in the batch's order."""

    record: list[Step] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


def plan(events: Sequence[LoanEvent], histories: Mapping[str, Sequence[LoanEvent]],
         recorded: Mapping[str, LoanEvent], known_customers: Collection[str],
         now: datetime) -> Plan:
    """Judges ``events`` in order, each seeing those before it that are to be recorded.

    ``histories``: the recorded events of the applications concerned, by application id, in
    step order; ``recorded``: the recorded events by event id (those of the batch's ids
    suffice); ``known_customers``: the batch's customers the whitelist has."""
    chains = {app: list(chain) for app, chain in histories.items()}
    by_id = dict(recorded)
    result = Plan()
    for index, event in enumerate(events):
        if event.customer_id not in known_customers:
            result.refused.append((index, "unknown customer: not on the whitelist"))
            continue
        chain = chains.setdefault(event.application_id, [])
        verdict = judge(event, chain, by_id.get(event.event_id), now)
        if verdict.judgement == Judgement.DUPLICATE:
            result.duplicates.append(index)
        elif verdict.judgement == Judgement.REFUSED:
            result.refused.append((index, verdict.reason))
        else:
            chain.append(event)
            by_id[event.event_id] = event
            result.record.append(Step(index, event, len(chain)))
    return result

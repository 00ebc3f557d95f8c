"""Recording the loan system's outcomes (``oc_loan_events``), idempotently by its event ids, and
the loan API's request nonces (``oc_loan_request_nonces``).

Each batch is judged by ``lending.loan_rules.plan`` against what is recorded, then written in
the caller's transaction. Two writers extending one application at once collide on its
(application, step) and the loser's transaction fails with an ``IntegrityError``;
:func:`with_retries` runs the whole transaction again, which then sees the winner's event.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lending.errors import LoanEventRefused, SignatureError
from lending.loan_events import LoanEvent
from lending.loan_rules import plan
from persistence.engine import session_scope
from persistence.schema import Customer, LoanEventRecord, LoanRequestNonce

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRIES = 3
"""Transactions run at most this many times when they lose a race on a unique key."""
_IN_CHUNK = 500
"""Ids per ``IN (...)`` list (SQLite takes at most 999 parameters in older builds)."""


@dataclass
class Recorded:
    """What became of a batch: events recorded, duplicates (recorded before: nothing done), and
    refusals as (where, reason), in the batch's order."""

    recorded: list[str] = field(default_factory=list)
    """The recorded events' ids."""
    duplicates: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def event_of(row: LoanEventRecord) -> LoanEvent:
    """A stored event as the rules see it."""
    return LoanEvent(event_id=row.event_id, customer_id=row.customer_id,
                     application_id=row.application_id, status=row.status,
                     occurred_at=row.occurred_at, amount_fen=row.amount_fen,
                     branch_id=row.branch_id)


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    unique = sorted(set(values))
    return [unique[i:i + _IN_CHUNK] for i in range(0, len(unique), _IN_CHUNK)]


def _known(session: Session, events: Sequence[LoanEvent]) -> tuple[
        dict[str, list[LoanEvent]], dict[str, LoanEvent], set[str]]:
    """The recorded events of the batch's applications (in step order) and under its event
    ids, and which of its customers the whitelist has."""
    histories: dict[str, list[LoanEvent]] = defaultdict(list)
    for ids in _chunks([e.application_id for e in events]):
        for row in session.execute(select(LoanEventRecord)
                                   .where(LoanEventRecord.application_id.in_(ids))
                                   .order_by(LoanEventRecord.application_id,
                                             LoanEventRecord.step)).scalars():
            histories[row.application_id].append(event_of(row))
    recorded = {}
    for ids in _chunks([e.event_id for e in events]):
        for row in session.execute(select(LoanEventRecord)
                                   .where(LoanEventRecord.event_id.in_(ids))).scalars():
            recorded[row.event_id] = event_of(row)
    known: set[str] = set()
    for ids in _chunks([e.customer_id for e in events]):
        known.update(session.execute(select(Customer.customer_id)
                                     .where(Customer.customer_id.in_(ids))).scalars())
    return histories, recorded, known


def record_events(session: Session, events: Sequence[LoanEvent], *, now: datetime,
                  sources: Sequence[str], wheres: Sequence[str],
                  all_or_nothing: bool) -> Recorded:
    """Records ``events`` in the session's transaction: the new ones, in order, each as its
    application's next step. ``sources``: each event's ``source`` column; ``wheres``: how a
    refusal names it (``events[2]``, ``line 7``). ``all_or_nothing``: any refusal raises
    :class:`LoanEventRefused` with them all, and nothing is written; else the good ones are."""
    if not len(events) == len(sources) == len(wheres):
        raise ValueError("one source and one place per event")
    histories, recorded, known = _known(session, events)
    judged = plan(events, histories, recorded, known, now)
    result = Recorded(
        duplicates=[events[i].event_id for i in judged.duplicates],
        refused=[(wheres[i], reason) for i, reason in judged.refused])
    if judged.refused and all_or_nothing:
        raise LoanEventRefused(result.refused)
    for step in judged.record:
        event = step.event
        session.add(LoanEventRecord(
            event_id=event.event_id, customer_id=event.customer_id,
            application_id=event.application_id, step=step.step, status=event.status,
            occurred_at=event.occurred_at, amount_fen=event.amount_fen, branch_id=event.branch_id,
            source=sources[step.index][:200], received_at=now))
        result.recorded.append(event.event_id)
    session.flush()
    log.info("lending.loans.recorded", extra={
        "recorded": len(result.recorded), "duplicates": len(result.duplicates),
        "refused": len(result.refused)})
    return result


def remember_nonce(session: Session, nonce: str, now: datetime, window: timedelta) -> None:
    """Keeps a signed request's nonce; raises ``SignatureError("replayed")`` when it was seen
    before. Nonces older than twice the window are forgotten (their requests are stale)."""
    session.execute(delete(LoanRequestNonce).where(LoanRequestNonce.received_at < now - 2 * window))
    if session.get(LoanRequestNonce, nonce) is not None:
        raise SignatureError("replayed", "this request was received before (its nonce is spent)")
    session.add(LoanRequestNonce(nonce=nonce, received_at=now))
    session.flush()


def with_retries(engine: Engine, work: Callable[[Session], T], attempts: int = RETRIES) -> T:
    """``work(session)`` in one transaction, run again (from the start) when it lost a race on
    a unique key to another writer."""
    for attempt in range(1, attempts + 1):
        try:
            with session_scope(engine) as session:
                return work(session)
        except IntegrityError:
            if attempt == attempts:
                raise
            log.info("lending.loans.retry", extra={"attempt": attempt})
    raise AssertionError("unreachable")


def application_events(session: Session, application_id: str) -> list[LoanEvent]:
    """An application's recorded events, in step order."""
    return [event_of(row) for row in session.execute(
        select(LoanEventRecord).where(LoanEventRecord.application_id == application_id)
        .order_by(LoanEventRecord.step)).scalars()]

"""Finding calls for the call log: every call that ran (``oc_calls``) and every campaign
dial that never connected (``oc_call_attempts`` without a call), newest first, with the
customer and the campaign they belong to.

SQLite before 3.39 has no FULL OUTER JOIN, so the two halves are two queries, each sorted
and limited, merged here.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import null, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from outbound.call_log import LoggedCall, phone_patterns
from persistence.schema import Call, CallAttempt, Campaign, Customer

_PERSON = (Customer.name, Customer.masked_name, Customer.phone, Customer.region)
_ATTEMPT = (CallAttempt.campaign_id, Campaign.name, CallAttempt.variant, CallAttempt.attempt_no)


def _connected() -> tuple[Select, type[Call]]:
    return (
        select(Call.id, Call.customer_id, Call.started_at, *_PERSON, *_ATTEMPT, Call.transport,
               Call.outcome, Call.ended_by, Call.duration_ms, Call.handoff_id)
        .select_from(Call)
        .outerjoin(CallAttempt, CallAttempt.call_id == Call.id)
        .outerjoin(Customer, Customer.customer_id == Call.customer_id)
        .outerjoin(Campaign, Campaign.id == CallAttempt.campaign_id)
    ), Call


def _unconnected() -> tuple[Select, type[CallAttempt]]:
    return (
        select(CallAttempt.call_id, CallAttempt.customer_id, CallAttempt.started_at, *_PERSON,
               *_ATTEMPT, null(), CallAttempt.outcome, null(), null(), CallAttempt.handoff_id)
        .select_from(CallAttempt)
        .outerjoin(Call, Call.id == CallAttempt.call_id)
        .outerjoin(Customer, Customer.customer_id == CallAttempt.customer_id)
        .outerjoin(Campaign, Campaign.id == CallAttempt.campaign_id)
        .where(Call.id.is_(None))
    ), CallAttempt


def _logged(row: Any) -> LoggedCall:
    (call_id, customer_id, started_at, name, masked_name, phone, region, campaign_id,
     campaign_name, variant, attempt_no, transport, outcome, ended_by, duration_ms,
     handoff_id) = row
    return LoggedCall(
        call_id=call_id, customer_id=customer_id, started_at=started_at, name=name,
        masked_name=masked_name, phone=phone, region=region, campaign_id=campaign_id,
        campaign_name=campaign_name, variant=variant, attempt_no=attempt_no, transport=transport,
        outcome=None if outcome is None else str(outcome),
        ended_by=None if ended_by is None else str(ended_by),
        duration_ms=duration_ms, handoff_id=handoff_id,
    )


def search_calls(session: Session, *, customer: str | None = None, campaign: str | None = None,
                 regions: Collection[str] | None = None, limit: int = 50) -> list[LoggedCall]:
    """Calls newest first. ``customer``: a customer id, or a fragment of their masked phone
    (see :func:`outbound.call_log.phone_patterns`); ``regions``: only customers living there
    (a branch manager's reach; None for everyone)."""
    found: list[LoggedCall] = []
    for query, table in (_connected(), _unconnected()):
        if customer:
            query = query.where(or_(table.customer_id == customer,
                                    *(Customer.phone.like(p) for p in phone_patterns(customer))))
        if campaign:
            query = query.where(CallAttempt.campaign_id == campaign)
        if regions is not None:
            query = query.where(Customer.region.in_(list(regions)))
        query = query.order_by(table.started_at.desc()).limit(limit)
        found += [_logged(row) for row in session.execute(query)]
    found.sort(key=lambda c: c.started_at, reverse=True)
    return found[:limit]


def find_call(session: Session, call_id: str) -> LoggedCall | None:
    """One call (or unconnected dial) by its id."""
    for query, table in (_connected(), _unconnected()):
        key = table.id if table is Call else table.call_id
        row = session.execute(query.where(key == call_id)).first()
        if row is not None:
            return _logged(row)
    return None

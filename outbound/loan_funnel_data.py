"""Reads a campaign's customers' loan applications (``oc_loan_events``, which the lending
package records from the loan system) into the funnel to disbursement's facts
(``outbound.loan_funnel``).

An application counts for the campaign when its customer is one of the campaign's and applied
(the application's first event) once they had joined it (their target's creation), as chats
and branch leads count (``outbound.channel_funnel_data``). The same application therefore
counts for every campaign its customer was in at the time.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.vocabulary import LoanStatus
from outbound.loan_funnel import LoanFact
from persistence.schema import CampaignTarget, LoanEventRecord

_APPROVALS = {LoanStatus.AUTO_APPROVED, LoanStatus.APPROVED}


def _fact(events: list[Any]) -> LoanFact:
    first = events[0]
    statuses = {row.LoanEventRecord.status for row in events}
    paid = [row.LoanEventRecord.amount_fen or 0 for row in events
            if row.LoanEventRecord.status == LoanStatus.DISBURSED]
    branches = [row.LoanEventRecord.branch_id for row in events if row.LoanEventRecord.branch_id]
    return LoanFact(
        customer_id=first.LoanEventRecord.customer_id,
        application_id=first.LoanEventRecord.application_id, variant=first.variant,
        applied_at=first.LoanEventRecord.occurred_at,
        approved=bool(statuses & _APPROVALS), disbursed=LoanStatus.DISBURSED in statuses,
        declined=LoanStatus.DECLINED in statuses, withdrawn=LoanStatus.WITHDRAWN in statuses,
        disbursed_fen=sum(paid), branch=branches[-1] if branches else None)


def loan_facts(session: Session, campaign_id: str) -> list[LoanFact]:
    """The applications of the campaign's customers made since each joined it, as far as each
    got; none for an unknown campaign or one without loan events."""
    rows = session.execute(
        select(LoanEventRecord, CampaignTarget.variant, CampaignTarget.created_at.label("joined"))
        .join(CampaignTarget, (CampaignTarget.customer_id == LoanEventRecord.customer_id)
              & (CampaignTarget.campaign_id == campaign_id))
        .order_by(LoanEventRecord.application_id, LoanEventRecord.step)).all()
    applications: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        applications[row.LoanEventRecord.application_id].append(row)
    return [_fact(events) for events in applications.values()
            if events[0].LoanEventRecord.status == LoanStatus.APPLIED
            and events[0].LoanEventRecord.occurred_at >= events[0].joined]

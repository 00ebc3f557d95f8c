"""Reads a campaign's attempts, with their handoff tickets, into the report's records (an
attempt's branch is the one its ticket was routed to, else the customer's nearest), and the
branch leads of its customers."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from handoff.tickets import events_of
from outbound.funnel import AttemptFacts
from outbound.lead_funnel import LeadFact
from persistence.branches import nearest_branches
from persistence.schema import (
    Branch,
    BranchLead,
    BranchLeadAssignment,
    CallAttempt,
    Campaign,
    CampaignTarget,
    Customer,
    Handoff,
)


def _first_claim_s(session: Session, handoff: Handoff | None) -> float | None:
    if handoff is None:
        return None
    claims = [e.created_at for e in events_of(session, handoff.id) if e.to_status == "claimed"]
    return (min(claims) - handoff.created_at).total_seconds() if claims else None


def attempt_facts(session: Session, campaign_id: str) -> list[AttemptFacts]:
    """Every finished or interrupted attempt of the campaign (calls still running are left out)."""
    rows = session.execute(
        select(CallAttempt, Customer.region)
        .join(Customer, Customer.customer_id == CallAttempt.customer_id)
        .where(CallAttempt.campaign_id == campaign_id, CallAttempt.status != "dialing")
        .order_by(CallAttempt.started_at, CallAttempt.id)
    ).all()
    handoff_ids = [a.handoff_id for a, _ in rows if a.handoff_id is not None]
    handoffs = {h.id: h for h in session.execute(
        select(Handoff).where(Handoff.id.in_(handoff_ids))).scalars()} if handoff_ids else {}
    nearest = nearest_branches(session)
    facts = []
    for attempt, region in rows:
        seen = attempt.facts or {}
        handoff = handoffs.get(attempt.handoff_id) if attempt.handoff_id else None
        facts.append(AttemptFacts(
            campaign_id=campaign_id, customer_id=attempt.customer_id, variant=attempt.variant,
            attempt_no=attempt.attempt_no, region=region,
            branch=handoff.branch_id if handoff is not None else nearest.get(region),
            started_at=attempt.started_at, ended_at=attempt.ended_at,
            outcome=attempt.outcome or "failed",
            answered=bool(seen.get("answered")) and not seen.get("voicemail"),
            right_person=bool(seen.get("right_person")),
            disclosure_played=bool(seen.get("disclosure_played")),
            offer_heard=bool(seen.get("offer_heard")),
            hung_up_mid_offer=bool(seen.get("hung_up_mid_offer")),
            interested=bool(seen.get("interested")),
            transferred=bool(seen.get("transferred")),
            agent_connected=handoff is not None and handoff.connected_at is not None,
            agent_outcome=handoff.agent_outcome if handoff is not None else None,
            first_claim_s=_first_claim_s(session, handoff),
        ))
    return facts


def lead_facts(session: Session, campaign_id: str) -> list[LeadFact]:
    """The branch leads of the campaign's customers opened since the campaign was created
    (whatever made them: a call nobody could take, a callback, never being reached), each at
    the branch it is with now."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        return []
    periods = (select(BranchLeadAssignment.lead_id, func.count().label("periods"))
               .group_by(BranchLeadAssignment.lead_id).subquery())
    rows = session.execute(
        select(BranchLead, Branch.name, periods.c.periods)
        .join(CampaignTarget, (CampaignTarget.customer_id == BranchLead.customer_id)
              & (CampaignTarget.campaign_id == campaign_id))
        .outerjoin(Branch, Branch.id == BranchLead.branch_id)
        .outerjoin(periods, periods.c.lead_id == BranchLead.id)
        .where(BranchLead.created_at >= campaign.created_at)
        .order_by(BranchLead.id)).all()
    return [LeadFact(
        branch_id=lead.branch_id, branch_name=name or lead.branch_id,
        claimed=lead.claimed_at is not None, contacted=lead.contacted_at is not None,
        verified=lead.verified_at is not None,
        outcome=str(lead.outcome) if lead.closed_at is not None and lead.outcome else None,
        rerouted=(count or 1) > 1,
    ) for lead, name, count in rows]

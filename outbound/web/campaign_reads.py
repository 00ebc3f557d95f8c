"""What the campaign API reads from the database: every campaign with its counters (in a few
grouped queries, not a few per campaign), one campaign's live status, where its customers
stand in its contact plan, and the attempts export. Each takes the caller's session; the API
runs them off the event loop."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.masking import mask_name, mask_phone
from outbound import campaigns
from outbound.campaigns import CampaignConfig, CampaignInfo, CampaignProgress
from outbound.dialer import agent_capacity
from outbound.funnel import funnel
from outbound.report_data import attempt_facts
from outbound.web.campaign_views import ExportRow, counters_json, funnel_flags, funnel_json
from persistence.branches import nearest_branches
from persistence.schema import CallAttempt, Campaign, CampaignTarget, Customer, Handoff


def _counts(session: Session, column: Any, *where: Any) -> dict[str, dict[str, int]]:
    """campaign id -> value of ``column`` -> rows (of CampaignTarget or CallAttempt)."""
    table = column.class_
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for campaign_id, value, count in session.execute(
            select(table.campaign_id, column, func.count()).where(*where)
            .group_by(table.campaign_id, column)):
        found[campaign_id][value] = count
    return found


def all_campaigns(session: Session) -> list[tuple[CampaignInfo, CampaignProgress]]:
    """Every campaign, newest first, with its targets by status, outcomes and calls in flight
    (the next due time is left out of the list)."""
    targets = _counts(session, CampaignTarget.status)
    outcomes = _counts(session, CallAttempt.outcome, CallAttempt.status != "dialing")
    dialing = _counts(session, CallAttempt.status, CallAttempt.status == "dialing")
    rows = session.execute(select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id)
                           ).scalars()
    return [(CampaignInfo(row.id, row.name, row.status, row.transport,
                          CampaignConfig.from_json(row.config), row.created_at),
             CampaignProgress(targets.get(row.id, {}), outcomes.get(row.id, {}),
                              dialing.get(row.id, {}).get("dialing", 0), None))
            for row in rows]


def live_status(session: Session, campaign_id: str, now: datetime) -> dict[str, Any]:
    """The campaign's live status frame: status, counters, funnel, calls in flight and the
    agents free to take a transfer."""
    info = campaigns.get_campaign(session, campaign_id)
    progress = campaigns.progress(session, campaign_id)
    capacity = agent_capacity(session, now)
    return {"type": "status", "campaign_id": campaign_id, "status": str(info.status),
            "counters": counters_json(progress),
            "funnel": funnel_json(funnel(attempt_facts(session, campaign_id))),
            "in_flight": progress.in_flight,
            "agents_free": max(0, capacity.agents_online - capacity.agents_busy)}


def plan_positions(session: Session, campaign_id: str) -> dict[tuple[int, str], int]:
    """The campaign's customers by (``plan_step``, status), in one grouped query."""
    return {(step, status): count for step, status, count in session.execute(
        select(CampaignTarget.plan_step, CampaignTarget.status, func.count())
        .where(CampaignTarget.campaign_id == campaign_id)
        .group_by(CampaignTarget.plan_step, CampaignTarget.status))}


def _regions_of(session: Session, branch_id: str) -> list[str]:
    return [region for region, branch in nearest_branches(session).items() if branch == branch_id]


def export_rows(session: Session, *, start: datetime | None, end: datetime | None,
                campaign_id: str | None = None, branch_id: str | None = None) -> list[ExportRow]:
    """Finished attempts started in [start, end) (of one campaign, and of customers whose
    nearest branch is ``branch_id``, when given), oldest first, the customers masked."""
    query = (select(CallAttempt, Customer.name, Customer.phone, Customer.region,
                    Handoff.connected_at, Handoff.agent_outcome)
             .join(Customer, Customer.customer_id == CallAttempt.customer_id)
             .outerjoin(Handoff, Handoff.id == CallAttempt.handoff_id)
             .where(CallAttempt.status != "dialing")
             .order_by(CallAttempt.started_at, CallAttempt.id))
    if start is not None:
        query = query.where(CallAttempt.started_at >= start)
    if end is not None:
        query = query.where(CallAttempt.started_at < end)
    if campaign_id is not None:
        query = query.where(CallAttempt.campaign_id == campaign_id)
    if branch_id is not None:
        query = query.where(Customer.region.in_(_regions_of(session, branch_id)))
    nearest = nearest_branches(session)
    return [ExportRow(
        campaign_id=attempt.campaign_id, call_id=attempt.call_id, customer_id=attempt.customer_id,
        name=mask_name(name), phone=mask_phone(phone), region=region, branch=nearest.get(region),
        variant=attempt.variant, attempt_no=attempt.attempt_no, started_at=attempt.started_at,
        ended_at=attempt.ended_at, outcome=str(attempt.outcome or "failed"),
        **funnel_flags(attempt.facts or {}), agent_connected=connected_at is not None,
        agent_outcome=str(agent_outcome) if agent_outcome else None,
    ) for attempt, name, phone, region, connected_at, agent_outcome in session.execute(query)]

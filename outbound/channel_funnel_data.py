"""Reads one campaign's records on every channel into the cross-channel funnel's facts
(``outbound.channel_funnel``).

- Texts and pop-ups carry their campaign; a text's variant is its own, else the customer's.
- Calls are the report's attempts (``outbound.report_data.attempt_facts``).
- In-app chats do not carry a campaign: the chat link's signed token names only the customer,
  and the conversation row keeps the customer and its start. A chat counts for the campaign
  when its customer is one of the campaign's and it started once they had joined it (their
  target's creation), as the contact plans judge a customer's replies
  (``outbound.plan_runner.signals``). The same customer's chat therefore counts for every
  campaign they are in at the time.
- Branch leads of the campaign's customers opened since they joined it, at the branch each
  is with now; and the contact plan's branch steps (``oc_plan_steps``) as requests.

A record's branch is as in the call report: the one its handoff was routed to (chats), the
lead's own (leads), else the nearest branch of the customer's region.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.vocabulary import Channel, LeadOutcome, SmsStatus
from outbound.channel_funnel import (
    BranchLeadFact,
    ChannelFacts,
    ChatFact,
    PopupFact,
    SmsFact,
)
from outbound.report_data import attempt_facts
from persistence.branches import nearest_branches
from persistence.schema import (
    AppPopup,
    BranchLead,
    Campaign,
    CampaignTarget,
    Conversation,
    Customer,
    Handoff,
    PlanStepTaken,
    SmsMessage,
)

NO_VARIANT = "(none)"
"""The variant of a text or pop-up that names none, of a customer not in the campaign."""
OPTED_OUT = "opt_out"
"""A reply's ``detail`` once it opted the customer out (``outbound.sms_messages.opt_out``)."""


def _is_target(campaign_id: str) -> Any:
    return ((CampaignTarget.campaign_id == campaign_id)
            & (CampaignTarget.customer_id == Customer.customer_id))


def sms_facts(session: Session, campaign_id: str, variants: dict[str, str],
              nearest: dict[str, str]) -> list[SmsFact]:
    """The campaign's texts to its customers and their replies (those of no known customer
    are left out)."""
    rows = session.execute(
        select(SmsMessage, Customer.region)
        .outerjoin(Customer, Customer.customer_id == SmsMessage.customer_id)
        .where(SmsMessage.campaign_id == campaign_id, SmsMessage.customer_id.is_not(None))
        .order_by(SmsMessage.id)).all()
    return [SmsFact(
        customer_id=message.customer_id,
        variant=message.variant or variants.get(message.customer_id, NO_VARIANT),
        branch=nearest.get(region) if region else None, direction=message.direction,
        created_at=message.created_at, submitted_at=message.submitted_at,
        delivered=message.status == SmsStatus.DELIVERED,
        opted_out=message.direction == "in" and message.detail == OPTED_OUT,
    ) for message, region in rows]


def popup_facts(session: Session, campaign_id: str, variants: dict[str, str],
                nearest: dict[str, str]) -> list[PopupFact]:
    """The campaign's pop-ups."""
    rows = session.execute(
        select(AppPopup, Customer.region)
        .outerjoin(Customer, Customer.customer_id == AppPopup.customer_id)
        .where(AppPopup.campaign_id == campaign_id).order_by(AppPopup.id)).all()
    return [PopupFact(
        customer_id=popup.customer_id,
        variant=popup.variant or variants.get(popup.customer_id, NO_VARIANT),
        branch=nearest.get(region) if region else None, created_at=popup.created_at,
        shown_at=popup.shown_at, clicked_at=popup.clicked_at, dismissed_at=popup.dismissed_at,
    ) for popup, region in rows]


def chat_facts(session: Session, campaign_id: str, nearest: dict[str, str]) -> list[ChatFact]:
    """The in-app chats of the campaign's customers since each joined it (see the module
    docstring), each with its handoffs."""
    rows = session.execute(
        select(Conversation.id, Conversation.customer_id, Conversation.started_at,
               CampaignTarget.variant, Customer.region, Handoff.reason, Handoff.branch_id,
               Handoff.agent_outcome)
        .join(Customer, Customer.customer_id == Conversation.customer_id)
        .join(CampaignTarget, _is_target(campaign_id))
        .outerjoin(Handoff, Handoff.conversation_id == Conversation.id)
        .where(Conversation.channel == str(Channel.CHAT),
               Conversation.started_at >= CampaignTarget.created_at)
        .order_by(Conversation.started_at, Conversation.id, Handoff.id)).all()
    chats: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        chats[row.id].append(row)
    facts = []
    for handoffs in chats.values():
        first = handoffs[0]
        routed = [h.branch_id for h in handoffs if h.branch_id]
        facts.append(ChatFact(
            customer_id=first.customer_id, variant=first.variant,
            branch=routed[-1] if routed else nearest.get(first.region),
            started_at=first.started_at,
            handoff_reasons=frozenset(h.reason for h in handoffs if h.reason is not None),
            applied=any(h.agent_outcome == "applied" for h in handoffs),
        ))
    return facts


def branch_lead_facts(session: Session, campaign_id: str,
                      nearest: dict[str, str]) -> list[BranchLeadFact]:
    """The contact plan's branch steps (requests), then the branch leads of the campaign's
    customers opened since each joined it, each at the branch it is with now."""
    requests = session.execute(
        select(PlanStepTaken.customer_id, PlanStepTaken.taken_at, CampaignTarget.variant,
               Customer.region)
        .join(Customer, Customer.customer_id == PlanStepTaken.customer_id)
        .join(CampaignTarget, CampaignTarget.id == PlanStepTaken.target_id)
        .where(PlanStepTaken.campaign_id == campaign_id, PlanStepTaken.channel == "branch_lead")
        .order_by(PlanStepTaken.id)).all()
    facts = [BranchLeadFact(customer_id=row.customer_id, variant=row.variant,
                            branch=nearest.get(row.region), at=row.taken_at, requested=True)
             for row in requests]
    leads = session.execute(
        select(BranchLead, CampaignTarget.variant)
        .join(Customer, Customer.customer_id == BranchLead.customer_id)
        .join(CampaignTarget, _is_target(campaign_id))
        .where(BranchLead.created_at >= CampaignTarget.created_at)
        .order_by(BranchLead.id)).all()
    facts += [BranchLeadFact(
        customer_id=lead.customer_id, variant=variant, branch=lead.branch_id, at=lead.created_at,
        assigned=True, claimed=lead.claimed_at is not None,
        contacted=lead.contacted_at is not None, verified=lead.verified_at is not None,
        applied=lead.outcome == LeadOutcome.APPLIED) for lead, variant in leads]
    return facts


def channel_facts(session: Session, campaign_id: str) -> ChannelFacts:
    """Everything the campaign's customers did on every channel; empty for an unknown
    campaign."""
    if session.get(Campaign, campaign_id) is None:
        return ChannelFacts()
    variants = {customer_id: variant for customer_id, variant in session.execute(
        select(CampaignTarget.customer_id, CampaignTarget.variant)
        .where(CampaignTarget.campaign_id == campaign_id))}
    nearest = nearest_branches(session)
    return ChannelFacts(
        sms=tuple(sms_facts(session, campaign_id, variants, nearest)),
        popups=tuple(popup_facts(session, campaign_id, variants, nearest)),
        calls=tuple(attempt_facts(session, campaign_id)),
        chats=tuple(chat_facts(session, campaign_id, nearest)),
        leads=tuple(branch_lead_facts(session, campaign_id, nearest)),
    )

"""The response-prediction A/B test of a campaign: its ``fixed`` arm (the plan as written)
against its ``model`` arm (channel, hour and variant chosen per customer), judged with the
campaign report's own statistics (``outbound.abtest``).

Two measures per arm, each counted once per customer since they joined the campaign:

- **responded**: opened a chat, replied (not to opt out), tapped a pop-up, or said on a call
  they were interested (the same responses the model learns from);
- **handed over**: reached a human (a handoff ticket: a transfer, or a chat handed over).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from outbound.abtest import ABResult, compare
from outbound.plan_choice import ARMS
from outbound.sms_rules import is_opt_out
from persistence.schema import (
    AppPopup,
    CallAttempt,
    CampaignTarget,
    Conversation,
    Handoff,
    SmsMessage,
)


@dataclass(frozen=True)
class ArmResults:
    """Customers, responders and handovers per arm, and the two comparisons."""

    customers: dict[str, int]
    responded: dict[str, int]
    handed_over: dict[str, int]
    response_test: ABResult
    handover_test: ABResult

    def to_json(self) -> dict[str, object]:
        return {"customers": self.customers, "responded": self.responded,
                "handed_over": self.handed_over, "response_verdict": self.response_test.verdict,
                "handover_verdict": self.handover_test.verdict}


def _responders(session: Session, campaign_id: str, joined: dict[str, object]) -> set[str]:
    found: set[str] = set()
    ids = list(joined)

    def after(customer_id: str | None, at) -> bool:
        return customer_id in joined and at >= joined[customer_id]

    for start in range(0, len(ids), 5000):
        part = ids[start:start + 5000]
        for customer_id, at in session.execute(select(
                Conversation.customer_id, Conversation.started_at).where(
                Conversation.channel == "chat", Conversation.customer_id.in_(part))):
            if after(customer_id, at):
                found.add(customer_id)
        for customer_id, at, text in session.execute(select(
                SmsMessage.customer_id, SmsMessage.created_at, SmsMessage.text).where(
                SmsMessage.direction == "in", SmsMessage.customer_id.in_(part))):
            if after(customer_id, at) and not is_opt_out(text):
                found.add(customer_id)
    found.update(session.scalars(select(AppPopup.customer_id).where(
        AppPopup.campaign_id == campaign_id, AppPopup.clicked_at.is_not(None))))
    for customer_id, facts in session.execute(select(CallAttempt.customer_id, CallAttempt.facts)
                                              .where(CallAttempt.campaign_id == campaign_id)):
        if facts and (facts.get("interested") or facts.get("transferred")):
            found.add(customer_id)
    return found


def _handed_over(session: Session, joined: dict[str, object]) -> set[str]:
    ids, found = list(joined), set()
    for start in range(0, len(ids), 5000):
        for customer_id, at in session.execute(select(Handoff.customer_id, Handoff.created_at)
                                               .where(Handoff.customer_id.in_(
                                                   ids[start:start + 5000]))):
            if customer_id in joined and at >= joined[customer_id]:
                found.add(customer_id)
    return found


def arm_results(session: Session, campaign_id: str) -> ArmResults | None:
    """The campaign's A/B test of model-chosen against fixed plans; None when not targeted."""
    rows = session.execute(select(CampaignTarget.customer_id, CampaignTarget.arm,
                                  CampaignTarget.created_at)
                           .where(CampaignTarget.campaign_id == campaign_id,
                                  CampaignTarget.arm.is_not(None))).all()
    if not rows:
        return None
    joined = {customer_id: created for customer_id, _, created in rows}
    arm_of = {customer_id: arm for customer_id, arm, _ in rows}
    responders = _responders(session, campaign_id, joined)
    handed = _handed_over(session, joined)
    customers = {arm: sum(1 for a in arm_of.values() if a == arm) for arm in ARMS}
    responded = {arm: sum(1 for c in responders if arm_of.get(c) == arm) for arm in ARMS}
    handed_over = {arm: sum(1 for c in handed if arm_of.get(c) == arm) for arm in ARMS}
    return ArmResults(
        customers, responded, handed_over,
        compare({arm: (responded[arm], customers[arm]) for arm in ARMS}),
        compare({arm: (handed_over[arm], customers[arm]) for arm in ARMS}))

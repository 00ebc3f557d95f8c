"""Contact plans at work: each customer of a planned campaign waits in ``planned`` until their
next step falls due (``next_attempt_at``); then the runner decides (``outbound.contact_plans``)
on fresh facts and takes the step:

- ``sms``: the campaign's text (``outbound.sms_channel``: window, opt-outs, pace); outside the
  window the step waits for it;
- ``popup``: a pop-up the app will show;
- ``call``: the target becomes ``pending`` and the dialer calls it, with the campaign's
  retries; when the dialling is over it comes back to ``planned``;
- ``branch_lead``: recorded; the branches' lead scan hands the customer to the nearest branch.

A customer in response prediction's ``model`` arm (``outbound.targeting``) follows the plan
starting on the channel chosen for them, and their texts, pop-ups and calls wait for the local
hour chosen for them (``outbound.plan_choice``).

Every step taken is a row of ``oc_plan_steps`` (the cross-channel funnel reads them), written
with the target's move in one transaction. A customer who opted out, applied or refused
anywhere stops (``done``, with the reason). Targets are taken with ``planning`` (``SKIP LOCKED``
on PostgreSQL, a conditional update on SQLite), so two workers never take one step twice; one
whose worker died is taken again after :data:`STALE`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.vocabulary import ConversationOutcome, DialOutcome
from outbound import popups
from outbound.campaigns import get_campaign
from outbound.contact_plans import ContactPlan, PlanDecision, Signals, decide
from outbound.plan_choice import Choice, at_hour, personal_plan
from outbound.response_features import CHANNELS as CHOSEN_CHANNELS
from outbound.sms_channel import SmsChannel
from persistence import store
from persistence.claims import claim_rows
from persistence.engine import in_transaction
from persistence.schema import CampaignTarget, Conversation, Customer, Handoff, PlanStepTaken

log = logging.getLogger(__name__)

STALE = timedelta(minutes=5)
"""A target left ``planning`` this long (its worker died mid-step) is taken again."""
REFUSALS = (ConversationOutcome.NOT_INTERESTED, ConversationOutcome.ALREADY_HAS_LOAN)
POPUP_TITLE = "您有一笔专属预授信额度"
POPUP_BODY = "点击与{bank}智能助手聊聊，了解额度、利率和办理方式。"
POPUP_TTL = timedelta(days=3)


@dataclass(frozen=True)
class _Due:
    target_id: int
    customer_id: str
    variant: str
    step: int
    decision: PlanDecision
    plan: ContactPlan
    """The customer's plan: the campaign's, or the model's choice of it (``plan_choice``)."""


def customer_plan(plan: ContactPlan, target: CampaignTarget) -> tuple[ContactPlan, int | None]:
    """The plan a customer follows, and the local hour their steps are taken from (None: any
    time in the window): a ``model`` customer's plan starts on the chosen channel."""
    if target.arm != "model" or not target.choice:
        return plan, None
    choice = Choice.from_json(target.choice)
    if choice.channel in plan.channels:
        plan = personal_plan(plan, choice.channel)
    return plan, choice.hour


def _decide(plan: ContactPlan, target: CampaignTarget, facts: Signals, timezone: str,
            now: datetime) -> tuple[ContactPlan, PlanDecision]:
    """The customer's plan and what to do now: a contact step at the chosen hour waits for it."""
    own, hour = customer_plan(plan, target)
    decision = decide(own, target.plan_step, target.plan_taken_at, target.created_at, facts, now)
    if decision.verdict == "take" and hour is not None \
            and own.steps[target.plan_step].channel in CHOSEN_CHANNELS:
        due = at_hour(now, hour, timezone)
        if due > now:
            decision = PlanDecision("wait", target.plan_step, "chosen_hour", due)
    return own, decision


def signals(session: Session, target: CampaignTarget) -> Signals:
    """What the customer did since they joined the campaign, on any channel."""
    customer_id, since = target.customer_id, target.created_at
    phone = session.execute(select(Customer.phone).where(Customer.customer_id == customer_id)).scalar()
    applied = session.execute(select(exists().where(
        Handoff.customer_id == customer_id, Handoff.created_at >= since))).scalar()
    refused = target.last_outcome in (DialOutcome.NOT_INTERESTED, DialOutcome.ALREADY_HAS_LOAN) \
        or session.execute(select(exists().where(
            Conversation.customer_id == customer_id, Conversation.started_at >= since,
            Conversation.outcome.in_(REFUSALS)))).scalar()
    return Signals(opted_out=store.is_do_not_contact(session, customer_id=customer_id, phone=phone),
                   applied=bool(applied), refused=bool(refused))


def _take_due(session: Session, campaign_id: str, now: datetime, limit: int) -> list[CampaignTarget]:
    due = or_(CampaignTarget.status == "planned",
              (CampaignTarget.status == "planning") & (CampaignTarget.updated_at < now - STALE))
    query = (select(CampaignTarget)
             .where(CampaignTarget.campaign_id == campaign_id, due,
                    CampaignTarget.next_attempt_at <= now)
             .order_by(CampaignTarget.next_attempt_at, CampaignTarget.id).limit(limit))
    return claim_rows(session, query, CampaignTarget,
                      still_due=lambda row: (CampaignTarget.status == row.status)
                      & (CampaignTarget.updated_at == row.updated_at),
                      values={"status": "planning", "updated_at": now})


class PlanRunner:
    """Takes the due steps of one installation's planned campaigns."""

    def __init__(self, engine: Engine, *, sms: SmsChannel | None = None, bank: str = "",
                 clock: Callable[[], datetime] = utcnow, batch: int = 50) -> None:
        self.engine = engine
        self.sms = sms
        """None: the installation has no SMS channel; SMS steps are recorded as ``no_sms``."""
        self.bank = bank
        self.clock = clock
        self.batch = batch

    async def advance(self, campaign_id: str, now: datetime | None = None) -> int:
        """Takes every due step of the campaign (in batches); returns how many targets moved."""
        moved = 0
        while True:
            count = await self._advance_batch(campaign_id, now or self.clock())
            moved += count
            if count < self.batch:
                return moved

    async def _advance_batch(self, campaign_id: str, now: datetime) -> int:
        def take(session: Session) -> list[_Due]:
            config = get_campaign(session, campaign_id).config
            plan = config.contact_plan()
            due = []
            for target in _take_due(session, campaign_id, now, self.batch):
                own, decision = _decide(plan, target, signals(session, target),
                                        config.timezone, now)
                due.append(_Due(target.id, target.customer_id, target.variant,
                                target.plan_step, decision, own))
            return due

        due = await self._db(take)
        for item in due:
            await self._carry_out(campaign_id, item, now)
        return len(due)

    async def _carry_out(self, campaign_id: str, item: _Due, now: datetime) -> None:
        decision, plan = item.decision, item.plan
        if decision.verdict in ("stop", "done"):
            await self._db(lambda s: _finish(s, item, decision.reason or "plan_done", now))
            return
        if decision.verdict == "wait":
            await self._db(lambda s: _wait(s, item.target_id, decision.not_before or now, now))
            return
        step = plan.steps[item.step]
        if step.channel == "sms":
            result, ref, not_before = await self._text(campaign_id, item, step.template)
            if not_before is not None:  # outside the contact window: the step waits for it
                await self._db(lambda s: _wait(s, item.target_id, not_before, now))
                return
        elif step.channel == "popup":
            result, ref = await self._db(lambda s: _popup(s, campaign_id, item, self.bank, now))
        else:
            result, ref = ("requested" if step.channel == "branch_lead" else "dialling"), None
        last = item.step + 1 == len(plan.steps)
        await self._db(lambda s: _taken(s, campaign_id, item, step.channel, result, ref, last, now))
        log.info("plan.step", extra={"campaign_id": campaign_id, "target_id": item.target_id,
                                     "step": item.step, "channel": step.channel, "result": result})

    async def _text(self, campaign_id: str, item: _Due, template: str | None
                    ) -> tuple[str, str | None, datetime | None]:
        if self.sms is None:
            return "no_sms", None, None
        outcome = await self.sms.send_offer(campaign_id, item.customer_id,
                                            template=template or "offer", variant=item.variant)
        if outcome.status == "wait":
            return "wait", None, outcome.not_before
        result = outcome.reason if outcome.status == "skip" else outcome.status
        ref = str(outcome.message_id) if outcome.message_id is not None else None
        return result, ref, None

    async def _db(self, work):
        return await in_transaction(self.engine, work)


def _finish(session: Session, item: _Due, reason: str, now: datetime) -> None:
    """The customer's plan is over: stopped for ``reason``, or every step taken."""
    target = session.get(CampaignTarget, item.target_id)
    assert target is not None
    target.status, target.next_attempt_at, target.updated_at = "done", None, now
    if reason != "plan_done":
        target.final_reason = f"plan stopped: {reason}"
    elif not target.final_reason:
        target.final_reason = "plan done"


def _wait(session: Session, target_id: int, until: datetime, now: datetime) -> None:
    target = session.get(CampaignTarget, target_id)
    assert target is not None
    target.status, target.next_attempt_at, target.updated_at = "planned", until, now


def _popup(session: Session, campaign_id: str, item: _Due, bank: str,
           now: datetime) -> tuple[str, str | None]:
    try:
        popup_id = popups.create_popup(
            session, customer_id=item.customer_id, title=POPUP_TITLE,
            body=POPUP_BODY.format(bank=bank or "本行"), now=now, ttl=POPUP_TTL,
            campaign_id=campaign_id, variant=item.variant)
    except popups.PopupRefused:
        return "refused", None  # opted out meanwhile: the next decision stops the plan
    return "pending", str(popup_id)


def _taken(session: Session, campaign_id: str, item: _Due, channel: str, result: str,
           ref: str | None, last: bool, now: datetime) -> None:
    """The step is taken: recorded, and the target moved on (to the dialer for a call; done
    after the plan's last step, unless that is a call still to be dialled)."""
    session.add(PlanStepTaken(target_id=item.target_id, campaign_id=campaign_id,
                              customer_id=item.customer_id, step_no=item.step, channel=channel,
                              result=result, ref=ref, taken_at=now))
    target = session.get(CampaignTarget, item.target_id)
    assert target is not None
    target.plan_step, target.plan_taken_at, target.updated_at = item.step + 1, now, now
    if channel == "call":
        target.status, target.next_attempt_at, target.final_reason = "pending", now, None
    elif last:
        target.status, target.next_attempt_at = "done", None
        target.final_reason = target.final_reason or "plan done"
    else:  # the plan looks at the next step at once (it says when it is due)
        target.status, target.next_attempt_at = "planned", now

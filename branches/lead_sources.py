"""Where branch leads come from: customers the phone, chat and agents' queue did not finish.

Each source has a function for one event (``lead_from_*``: 404 no such event, 409 when it does
not qualify, with why) and a scan (``leads_from_*``) that finds the qualifying events of the
last ``lookback`` and makes each a lead. All are idempotent: an event makes one lead however
often it is seen, and an event about a customer whose lead is still open joins that lead
(``leads.open_lead``). ``collect_leads`` runs every scan; a periodic job calls it.

- A ticket (``ticket:<id>``). A live handoff the customer gave up waiting on (``abandoned``:
  interested, but no agent connected) is ``BOT_INTERESTED_NOT_CONNECTED``, unless the customer
  reached an agent on a later ticket. A callback task still unclaimed in the whole pool after
  its pool deadline (``handoff.sla``: the branch tier had it first) is ``CALLBACK_TASK``; it
  leaves the agents' queue (``abandoned``, saying which lead took it), so nobody calls twice.
- A campaign target (``target:<campaign>/<customer>``) finished (``done``) without the customer
  ever being reached: every attempt ended ``UNREACHED_OUTCOMES`` (no answer, busy, rejected,
  carrier unreachable, voicemail, or no such number: a branch can still call at the door), and
  the customer did not chat with us since. Not our own failures (``failed``: fix the trunk and
  dial again), nor a call that connected (``dropped``, ``no_response``, any conversation). The
  customer must still have consent and a valid offer. ``CAMPAIGN_UNREACHED``.
- A contact plan's branch step (``target:<campaign>/<customer>``, ``CONTACT_PLAN``): the plan
  got to it (the customer neither opted out, applied nor refused). The customer must still
  have consent and a valid offer.
- A callback booked in chat (``callback:<id>``) that no campaign can make (the customer is in
  none being worked; see ``outbound.chat_callbacks``), once the time the customer asked for
  has come. ``CALLBACK_TASK``; the callback becomes ``to_branch``, so a campaign started later
  does not adopt it as well.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session

from branches.deadlines import DeadlinePolicy, require_aware
from branches.leads import (
    DEFAULT_DEADLINES,
    DEFAULT_SCORECARD,
    SYSTEM,
    Lead,
    LeadError,
    lead_of_source,
    open_lead,
    suspended_branches,
)
from branches.scorecard import ScorecardPolicy
from core.vocabulary import CampaignStatus, DialOutcome, LeadSource, TicketStatus
from handoff import routing
from outbound.chat_callbacks import SCHEDULED
from persistence.handoffs import log_event
from persistence.schema import (
    BranchLeadSource,
    CallAttempt,
    Callback,
    Campaign,
    CampaignTarget,
    Conversation,
    Customer,
    Handoff,
    Offer,
    PlanStepTaken,
)

log = logging.getLogger(__name__)

LOOKBACK = timedelta(days=7)
"""How far back the scans look: older events are history, not leads (and a first run on an
old database does not turn its whole past into leads)."""
TICKET_SOURCES = (LeadSource.BOT_INTERESTED_NOT_CONNECTED, LeadSource.CALLBACK_TASK)
UNREACHED_OUTCOMES = frozenset({
    DialOutcome.NO_ANSWER, DialOutcome.BUSY, DialOutcome.DECLINED, DialOutcome.UNREACHABLE,
    DialOutcome.VOICEMAIL, DialOutcome.INVALID_NUMBER,
})
"""How a dial ends when it never reached the customer, for a reason a branch can get round."""
DIAL_OUTCOME_TEXT = {
    DialOutcome.NO_ANSWER: "未接听", DialOutcome.BUSY: "占线", DialOutcome.DECLINED: "拒接",
    DialOutcome.UNREACHABLE: "无法接通", DialOutcome.VOICEMAIL: "转语音信箱",
    DialOutcome.INVALID_NUMBER: "空号",
}
"""The unreached outcomes as the lead's history says them (in Chinese)."""
TO_BRANCH = "to_branch"
"""A chat callback's status once a branch lead took it over."""
AGENT_REACHED = frozenset({TicketStatus.CLAIMED, TicketStatus.CONNECTED, TicketStatus.CLOSED})


def ticket_ref(ticket_id: int) -> str:
    return f"ticket:{ticket_id}"


def target_ref(campaign_id: str, customer_id: str) -> str:
    return f"target:{campaign_id}/{customer_id}"


def callback_ref(callback_id: int) -> str:
    return f"callback:{callback_id}"


def _not_led(sources: tuple[LeadSource, ...] | LeadSource, ref: Any) -> Any:
    """``ref NOT IN (the refs that already made or joined a lead of these sources)``."""
    wanted = [sources] if isinstance(sources, str) else list(sources)
    led = select(BranchLeadSource.source_ref).where(BranchLeadSource.source.in_(wanted))
    return ref.not_in(led)


# ------------------------------------------------------------------- tickets
def _ticket_source(session: Session, row: Handoff, now: datetime) -> tuple[LeadSource | None, str]:
    """The lead source a ticket qualifies for now and why, in Chinese for the lead's history;
    or None and why not, for the refusal."""
    if row.customer_id is None:
        return None, "it has no known customer"
    if row.kind == "callback":
        if row.status not in routing.CLAIMABLE:
            return None, f"the callback task is {row.status}"
        if row.tier != "pool" or row.claim_deadline is None or row.claim_deadline > now:
            return None, "the agents' pool still has time to work the callback task"
        return LeadSource.CALLBACK_TASK, "回电任务超时未被坐席处理"
    if row.status != TicketStatus.ABANDONED:
        return None, f"the live handoff is {row.status}, not abandoned"
    later = session.execute(
        select(Handoff.id).where(Handoff.customer_id == row.customer_id, Handoff.id > row.id,
                                 Handoff.status.in_(AGENT_REACHED)).limit(1)).scalar()
    if later is not None:
        return None, f"the customer reached an agent on ticket {later}"
    return LeadSource.BOT_INTERESTED_NOT_CONNECTED, "客户有意向，但未接通人工坐席"


def lead_from_ticket(
    session: Session, ticket_id: int, now: datetime, *,
    deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    scorecard_policy: ScorecardPolicy = DEFAULT_SCORECARD,
    suspended: Mapping[str, str] | None = None,
) -> Lead:
    """The lead of an abandoned live handoff or an unworked callback task (see the module
    docstring); a callback task leaves the agents' queue."""
    require_aware("now", now)
    ref = ticket_ref(ticket_id)
    existing = lead_of_source(session, TICKET_SOURCES, ref, now, deadlines=deadlines)
    if existing is not None:
        return existing
    row = session.get(Handoff, ticket_id, populate_existing=True)
    if row is None:
        raise LeadError(404, f"no ticket {ticket_id}")
    source, why = _ticket_source(session, row, now)
    if source is None:
        raise LeadError(409, f"ticket {ticket_id} is no branch lead: {why}")
    lead = open_lead(session, row.customer_id, source, ref, now, deadlines=deadlines,
                     scorecard_policy=scorecard_policy, suspended=suspended,
                     note=f"{why}（工单 {ticket_id}，{row.channel}，{row.reason}）")
    if row.kind == "callback":
        _leave_queue(session, row, lead, now)
    return lead


def _leave_queue(session: Session, row: Handoff, lead: Lead, now: datetime) -> None:
    """The callback task leaves the agents' queue: the branch has the customer now."""
    before = row.status
    routing.check_transition(before, TicketStatus.ABANDONED)
    taken = session.execute(
        update(Handoff).where(Handoff.id == row.id, Handoff.status == before)
        .values(status=TicketStatus.ABANDONED, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if taken == 1:  # else an agent claimed it this instant: both may call, nobody is lost
        row = session.get(Handoff, row.id, populate_existing=True)
        log_event(session, row, before, SYSTEM,
                  f"已转交支行 {lead.branch_id}（线索 {lead.id}）", now)


def leads_from_tickets(
    session: Session, now: datetime, *, lookback: timedelta = LOOKBACK,
    deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    scorecard_policy: ScorecardPolicy = DEFAULT_SCORECARD,
    suspended: Mapping[str, str] | None = None,
) -> list[Lead]:
    """Makes a lead of every ticket changed in the last ``lookback`` that qualifies and has
    none yet; returns the leads made or joined."""
    require_aware("now", now)
    ref = literal("ticket:") + cast(Handoff.id, String)
    candidates = session.execute(
        select(Handoff.id)
        .where(Handoff.customer_id.is_not(None),
               func.coalesce(Handoff.updated_at, Handoff.created_at) >= now - lookback,
               or_(and_(Handoff.kind == "live", Handoff.status == TicketStatus.ABANDONED),
                   and_(Handoff.kind == "callback", Handoff.status.in_(routing.CLAIMABLE),
                        Handoff.tier == "pool", Handoff.claim_deadline < now)),
               _not_led(TICKET_SOURCES, ref))
        .order_by(Handoff.id)).scalars()
    return _each(session, list(candidates), lead_from_ticket, now, deadlines,
                 scorecard_policy, suspended)


# ---------------------------------------------------------- campaign targets
def _valid_offer_why_not(session: Session, customer_id: str, now: datetime) -> str | None:
    """Why a customer cannot be a branch's lead (no consent, no valid offer), or None."""
    customer = session.get(Customer, customer_id)
    if customer is None or not customer.consent:
        return "the customer has not consented to be contacted"
    offer = session.execute(select(Offer.valid_until).where(
        Offer.customer_id == customer_id, Offer.active.is_(True))).scalar()
    if offer is None or offer < now.date():
        return "the customer has no valid offer"
    return None


def _unreached_why_not(session: Session, target: CampaignTarget, now: datetime) -> str | None:
    """Why a campaign target is no unreached lead, or None when it is one."""
    if target.status != "done":
        return f"the campaign is still working it ({target.status})"
    if target.last_outcome not in UNREACHED_OUTCOMES:
        return f"its last call ended {target.last_outcome or 'without a call'}"
    reached = session.execute(
        select(CallAttempt.outcome).where(
            CallAttempt.target_id == target.id, CallAttempt.outcome.is_not(None),
            CallAttempt.outcome.not_in(list(UNREACHED_OUTCOMES))).limit(1)).scalar()
    if reached is not None:
        return f"a call reached the customer ({reached})"
    chatted = session.execute(
        select(Conversation.id).where(
            Conversation.customer_id == target.customer_id, Conversation.channel == "chat",
            Conversation.started_at >= target.created_at).limit(1)).scalar()
    if chatted is not None:
        return "the customer chatted with us since the campaign began"
    return _valid_offer_why_not(session, target.customer_id, now)


def lead_from_unreached_target(
    session: Session, target_id: int, now: datetime, *,
    deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    scorecard_policy: ScorecardPolicy = DEFAULT_SCORECARD,
    suspended: Mapping[str, str] | None = None,
) -> Lead:
    """The lead of a campaign target finished without ever reaching the customer (see the
    module docstring)."""
    require_aware("now", now)
    target = session.get(CampaignTarget, target_id)
    if target is None:
        raise LeadError(404, f"no campaign target {target_id}")
    ref = target_ref(target.campaign_id, target.customer_id)
    existing = lead_of_source(session, LeadSource.CAMPAIGN_UNREACHED, ref, now,
                              deadlines=deadlines)
    if existing is not None:
        return existing
    why_not = _unreached_why_not(session, target, now)
    if why_not is not None:
        raise LeadError(409, f"campaign target {target_id} is no branch lead: {why_not}")
    last = DIAL_OUTCOME_TEXT.get(target.last_outcome, target.last_outcome)
    return open_lead(session, target.customer_id, LeadSource.CAMPAIGN_UNREACHED, ref, now,
                     deadlines=deadlines, scorecard_policy=scorecard_policy, suspended=suspended,
                     note=f"外呼活动 {target.campaign_id}：共拨打 {target.attempts} 次，"
                          f"最后一次{last}")


def leads_from_unreached_targets(
    session: Session, now: datetime, *, lookback: timedelta = LOOKBACK,
    deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    scorecard_policy: ScorecardPolicy = DEFAULT_SCORECARD,
    suspended: Mapping[str, str] | None = None,
) -> list[Lead]:
    """Makes a lead of every campaign target finished unreached in the last ``lookback`` that
    has none yet; returns the leads made or joined."""
    require_aware("now", now)
    ref = (literal("target:") + CampaignTarget.campaign_id + literal("/")
           + CampaignTarget.customer_id)
    reached = exists().where(
        CallAttempt.target_id == CampaignTarget.id, CallAttempt.outcome.is_not(None),
        CallAttempt.outcome.not_in(list(UNREACHED_OUTCOMES)))
    candidates = session.execute(
        select(CampaignTarget.id)
        .where(CampaignTarget.status == "done",
               CampaignTarget.last_outcome.in_(list(UNREACHED_OUTCOMES)),
               CampaignTarget.updated_at >= now - lookback, ~reached,
               _not_led(LeadSource.CAMPAIGN_UNREACHED, ref))
        .order_by(CampaignTarget.id)).scalars()
    return _each(session, list(candidates), lead_from_unreached_target, now, deadlines,
                 scorecard_policy, suspended)


# ------------------------------------------------------- contact-plan steps
def lead_from_plan_step(
    session: Session, step_id: int, now: datetime, *,
    deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    scorecard_policy: ScorecardPolicy = DEFAULT_SCORECARD,
    suspended: Mapping[str, str] | None = None,
) -> Lead:
    """The lead a contact plan's branch step asked for (``outbound.plan_runner``)."""
    require_aware("now", now)
    step = session.get(PlanStepTaken, step_id)
    if step is None:
        raise LeadError(404, f"no contact-plan step {step_id}")
    if step.channel != "branch_lead":
        raise LeadError(409, f"contact-plan step {step_id} is a {step.channel} step")
    ref = target_ref(step.campaign_id, step.customer_id)
    existing = lead_of_source(session, LeadSource.CONTACT_PLAN, ref, now, deadlines=deadlines)
    if existing is not None:
        return existing
    why_not = _valid_offer_why_not(session, step.customer_id, now)
    if why_not is not None:
        raise LeadError(409, f"contact-plan step {step_id} is no branch lead: {why_not}")
    return open_lead(session, step.customer_id, LeadSource.CONTACT_PLAN, ref, now,
                     deadlines=deadlines, scorecard_policy=scorecard_policy, suspended=suspended,
                     note=f"营销活动 {step.campaign_id}：按联络计划第{step.step_no + 1}步转网点跟进")


def leads_from_plan_steps(
    session: Session, now: datetime, *, lookback: timedelta = LOOKBACK,
    deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    scorecard_policy: ScorecardPolicy = DEFAULT_SCORECARD,
    suspended: Mapping[str, str] | None = None,
) -> list[Lead]:
    """Makes a lead of every contact plan's branch step of the last ``lookback`` that has none
    yet; returns the leads made or joined."""
    require_aware("now", now)
    ref = (literal("target:") + PlanStepTaken.campaign_id + literal("/")
           + PlanStepTaken.customer_id)
    candidates = session.execute(
        select(PlanStepTaken.id)
        .where(PlanStepTaken.channel == "branch_lead", PlanStepTaken.taken_at >= now - lookback,
               _not_led(LeadSource.CONTACT_PLAN, ref))
        .order_by(PlanStepTaken.id)).scalars()
    return _each(session, list(candidates), lead_from_plan_step, now, deadlines,
                 scorecard_policy, suspended)


# ------------------------------------------------------------ chat callbacks
def _worked_by_a_campaign(customer_id: Any) -> Any:
    """Whether a campaign still being worked has the customer (it will make the callback)."""
    return exists().where(
        CampaignTarget.customer_id == customer_id, Campaign.id == CampaignTarget.campaign_id,
        Campaign.status.in_((CampaignStatus.RUNNING, CampaignStatus.PAUSED)))


def _callback_why_not(session: Session, callback: Callback, now: datetime) -> str | None:
    if callback.customer_id is None:
        return "it has no known customer"
    if callback.status != SCHEDULED:
        return f"it is {callback.status}"
    if callback.due_at > now:
        return f"it is not due until {callback.due_at.isoformat()}"
    on_call = session.execute(select(CallAttempt.id).where(
        CallAttempt.call_id == callback.conversation_id).limit(1)).scalar()
    if on_call is not None:
        return "it was booked on a campaign call, which schedules it"
    if session.execute(select(_worked_by_a_campaign(callback.customer_id))).scalar():
        return "a campaign being worked will make it"
    return None


def lead_from_chat_callback(
    session: Session, callback_id: int, now: datetime, *,
    deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    scorecard_policy: ScorecardPolicy = DEFAULT_SCORECARD,
    suspended: Mapping[str, str] | None = None,
) -> Lead:
    """The lead of a callback booked in chat that no campaign can make, once it is due (see
    the module docstring); the callback becomes ``to_branch``."""
    require_aware("now", now)
    ref = callback_ref(callback_id)
    existing = lead_of_source(session, LeadSource.CALLBACK_TASK, ref, now, deadlines=deadlines)
    if existing is not None:
        return existing
    callback = session.get(Callback, callback_id, populate_existing=True)
    if callback is None:
        raise LeadError(404, f"no callback {callback_id}")
    why_not = _callback_why_not(session, callback, now)
    if why_not is not None:
        raise LeadError(409, f"callback {callback_id} is no branch lead: {why_not}")
    lead = open_lead(session, callback.customer_id, LeadSource.CALLBACK_TASK, ref, now,
                     deadlines=deadlines, scorecard_policy=scorecard_policy, suspended=suspended,
                     note=f"客户在线上聊天中预约回电，时间 {callback.due_at.isoformat()}")
    callback.status = TO_BRANCH
    session.flush()
    return lead


def leads_from_unplaced_callbacks(
    session: Session, now: datetime, *, lookback: timedelta = LOOKBACK,
    deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    scorecard_policy: ScorecardPolicy = DEFAULT_SCORECARD,
    suspended: Mapping[str, str] | None = None,
) -> list[Lead]:
    """Makes a lead of every chat callback due in the last ``lookback`` that no campaign can
    make; returns the leads made or joined."""
    require_aware("now", now)
    ref = literal("callback:") + cast(Callback.id, String)
    candidates = session.execute(
        select(Callback.id)
        .where(Callback.status == SCHEDULED, Callback.customer_id.is_not(None),
               Callback.due_at <= now, Callback.due_at >= now - lookback,
               Callback.conversation_id.not_in(select(CallAttempt.call_id)),
               ~_worked_by_a_campaign(Callback.customer_id),
               _not_led(LeadSource.CALLBACK_TASK, ref))
        .order_by(Callback.due_at, Callback.id)).scalars()
    return _each(session, list(candidates), lead_from_chat_callback, now, deadlines,
                 scorecard_policy, suspended)


# ---------------------------------------------------------------- all of them
def _each(session: Session, ids: list[int], make: Callable[..., Lead], now: datetime,
          deadlines: DeadlinePolicy, scorecard_policy: ScorecardPolicy,
          suspended: Mapping[str, str] | None) -> list[Lead]:
    """``make`` (a ``lead_from_*``) for each candidate, the suspensions computed once; a
    candidate refused (a customer who opted out, a region without branches) is logged and
    passed over."""
    if not ids:
        return []
    if suspended is None:
        suspended = suspended_branches(session, now, deadlines, scorecard_policy)
    made = []
    for candidate in ids:
        try:
            made.append(make(session, candidate, now, deadlines=deadlines,
                             scorecard_policy=scorecard_policy, suspended=suspended))
        except LeadError as exc:
            log.info("branches.lead.source_skipped id=%s status=%s why=%s", candidate,
                     exc.status, exc)
    return made


def collect_leads(
    session: Session, now: datetime, *, lookback: timedelta = LOOKBACK,
    deadlines: DeadlinePolicy = DEFAULT_DEADLINES,
    scorecard_policy: ScorecardPolicy = DEFAULT_SCORECARD,
) -> list[Lead]:
    """Every scan above, in one transaction: the leads made or joined. Idempotent, so a
    periodic job may run it as often as it likes (and several processes at once)."""
    require_aware("now", now)
    suspended = suspended_branches(session, now, deadlines, scorecard_policy)
    options = {"lookback": lookback, "deadlines": deadlines,
               "scorecard_policy": scorecard_policy, "suspended": suspended}
    return [
        *leads_from_tickets(session, now, **options),
        *leads_from_unreached_targets(session, now, **options),
        *leads_from_plan_steps(session, now, **options),
        *leads_from_unplaced_callbacks(session, now, **options),
    ]

"""offercall's tables. Prefixed ``oc_`` because Rasa's SQL tracker store shares the database."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import declarative_base

from core.vocabulary import (
    AgentOutcome,
    AlertRule,
    AlertStatus,
    AuditAction,
    CallOutcome,
    Channel,
    ConversationOutcome,
    DialOutcome,
    EndedBy,
    LeadOutcome,
    LeadSource,
    LeadStatus,
    LoanStatus,
    PopupStatus,
    SmsStatus,
    StrEnum,
    TicketStatus,
)

Base = declarative_base()


def vocabulary(words: type[StrEnum], length: int) -> Enum:
    """A column of one of ``core.vocabulary``'s words: stored as its value in a VARCHAR
    (no database enum type, no CHECK), read back as the member; anything else is refused."""
    return Enum(words, native_enum=False, create_constraint=False, length=length,
                values_callable=lambda members: [member.value for member in members],
                validate_strings=True)


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC; always returns aware UTC datetimes (SQLite drops tz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a timezone")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Percent(TypeDecorator):
    """A percentage with two decimals (3.85), stored exactly as an integer of hundredths.

    Numeric would be lossy on SQLite, which keeps decimals as floating point.
    """

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Decimal | float | None, dialect: Any) -> int | None:
        if value is None:
            return None
        hundredths = Decimal(str(value)) * 100
        if hundredths != hundredths.to_integral_value():
            raise ValueError(f"percentages keep two decimals, got {value}")
        return int(hundredths)

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value) / 100


class Customer(Base):
    __tablename__ = "oc_customers"
    customer_id = Column(String(64), primary_key=True)
    name = Column(String(100), nullable=False)
    masked_name = Column(String(100), nullable=False)
    gender = Column(String(1))
    phone = Column(String(20), nullable=False, index=True)
    region = Column(String(100), nullable=False)
    segment = Column(String(100), nullable=False, default="")
    consent = Column(Boolean, nullable=False)
    address = Column(String(200))
    org_name = Column(String(100))
    """The organisation this customer is the contact of (a clinic or pharmacy for 医保贷)."""
    org_address = Column(String(200))
    """The organisation's registered address."""
    created_at = Column(UTCDateTime, nullable=False)
    updated_at = Column(UTCDateTime, nullable=False)


class Offer(Base):
    """A pre-approved offer version. Changed terms make a new version; old ones are kept."""

    __tablename__ = "oc_offers"
    id = Column(Integer, primary_key=True, autoincrement=True)
    customer_id = Column(ForeignKey("oc_customers.customer_id"), nullable=False, index=True)
    product = Column(String(100), nullable=False)
    amount_yuan = Column(Integer, nullable=False)
    rate_min = Column(Percent, nullable=False)
    rate_max = Column(Percent, nullable=False)
    term_months = Column(Integer, nullable=False)
    valid_until = Column(Date, nullable=False)
    version = Column(Integer, nullable=False)
    active = Column(Boolean, nullable=False)
    created_at = Column(UTCDateTime, nullable=False)


class Conversation(Base):
    __tablename__ = "oc_conversations"
    id = Column(String(128), primary_key=True)
    customer_id = Column(ForeignKey("oc_customers.customer_id"), index=True)
    channel = Column(String(16), nullable=False)
    offer_id = Column(ForeignKey("oc_offers.id"))
    outcome = Column(vocabulary(ConversationOutcome, 32))
    outcome_reason = Column(Text)
    started_at = Column(UTCDateTime, nullable=False)
    ended_at = Column(UTCDateTime)


class Callback(Base):
    __tablename__ = "oc_callbacks"
    id = Column(Integer, primary_key=True, autoincrement=True)
    conversation_id = Column(String(128), nullable=False, index=True)
    customer_id = Column(String(64), index=True)
    due_at = Column(UTCDateTime, nullable=False, index=True)
    requested_text = Column(Text, nullable=False)
    status = Column(String(16), nullable=False)
    created_at = Column(UTCDateTime, nullable=False)


class DoNotContact(Base):
    """Opt-outs. Never deleted."""

    __tablename__ = "oc_do_not_contact"
    __table_args__ = (
        CheckConstraint("customer_id IS NOT NULL OR phone IS NOT NULL", name="oc_dnc_has_key"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    customer_id = Column(String(64), index=True)
    phone = Column(String(20), index=True)
    utterance = Column(Text, nullable=False)
    conversation_id = Column(String(128))
    source = Column(String(16), nullable=False)
    created_at = Column(UTCDateTime, nullable=False)


class Handoff(Base):
    """A request to hand a customer to a human agent (the ticket). Never deleted; every status
    change is also a :class:`HandoffEvent`."""

    __tablename__ = "oc_handoffs"
    id = Column(Integer, primary_key=True, autoincrement=True)
    conversation_id = Column(String(128), nullable=False, index=True)
    customer_id = Column(String(64), index=True)
    offer_id = Column(Integer)
    channel = Column(vocabulary(Channel, 16), nullable=False)
    reason = Column(String(64), nullable=False)
    transcript = Column(JSON, nullable=False)
    intents = Column(JSON, nullable=False)
    status = Column(vocabulary(TicketStatus, 16), nullable=False, index=True)
    created_at = Column(UTCDateTime, nullable=False)
    kind = Column(String(16), nullable=False, default="live", server_default="live")
    tier = Column(String(16), nullable=False, default="branch", server_default="branch")
    region = Column(String(100))
    branch_id = Column(String(32))
    product = Column(String(100))
    language = Column(String(32), nullable=False, default="mandarin", server_default="mandarin")
    waiting_since = Column(UTCDateTime)
    claim_deadline = Column(UTCDateTime)
    callback_due_at = Column(UTCDateTime)
    claimed_by = Column(Integer)
    claimed_at = Column(UTCDateTime)
    connected_at = Column(UTCDateTime)
    closed_at = Column(UTCDateTime)
    agent_outcome = Column(vocabulary(AgentOutcome, 32))
    agent_note = Column(Text)
    updated_at = Column(UTCDateTime)
    transfer_mode = Column(String(16))
    """A phone call's transfer over SIP: ``refer`` (blind) or ``bridge`` (warm)."""
    transfer_target = Column(String(200))
    transfer_status = Column(String(16))
    """``accepted`` (the REFER was followed), ``bridged``, or ``failed``."""
    transferred_at = Column(UTCDateTime)


class HandoffEvent(Base):
    """One change of a ticket: who, when, why."""

    __tablename__ = "oc_handoff_events"
    id = Column(Integer, primary_key=True, autoincrement=True)
    handoff_id = Column(Integer, nullable=False, index=True)
    from_status = Column(vocabulary(TicketStatus, 16))
    to_status = Column(vocabulary(TicketStatus, 16), nullable=False)
    tier = Column(String(16), nullable=False)
    actor = Column(String(64), nullable=False)
    reason = Column(Text, nullable=False)
    created_at = Column(UTCDateTime, nullable=False)


class Message(Base):
    """A message of a conversation as its participants see it (chat, or a call's live
    transcript once it is with an agent). Ids order the log; clients resume after an id."""

    __tablename__ = "oc_messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "client_msg_id", name="uq_oc_messages_client_id"),
        Index("ix_oc_messages_conversation", "conversation_id", "id"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    conversation_id = Column(String(128), nullable=False)
    sender = Column(String(16), nullable=False)  # customer | bot | agent | system
    text = Column(Text, nullable=False)
    client_msg_id = Column(String(64))
    handoff_id = Column(Integer)
    agent_id = Column(Integer)
    data = Column(JSON, nullable=False)
    created_at = Column(UTCDateTime, nullable=False)


class Branch(Base):
    __tablename__ = "oc_branches"
    id = Column(String(32), primary_key=True)
    name = Column(String(100), nullable=False)
    address = Column(String(200))
    lat = Column(Float)
    """Where the branch is (WGS-84 degrees); None until its site is loaded."""
    lon = Column(Float)


class RegionBranch(Base):
    """How far each branch is from a customer region (county/district)."""

    __tablename__ = "oc_region_branches"
    region = Column(String(100), primary_key=True)
    branch_id = Column(String(32), primary_key=True)
    distance_km = Column(Float, nullable=False)


class Agent(Base):
    """A call-center agent or supervisor who logs in to the console."""

    __tablename__ = "oc_agents"
    id = Column(Integer, primary_key=True, autoincrement=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(100), nullable=False)
    password_hash = Column(String(256), nullable=False)
    role = Column(String(16), nullable=False)
    branch_id = Column(String(32))
    products = Column(JSON, nullable=False)
    languages = Column(JSON, nullable=False)
    active = Column(Boolean, nullable=False)
    last_seen_at = Column(UTCDateTime)
    created_at = Column(UTCDateTime, nullable=False)
    phone = Column(String(200))
    """The account's own phone for one-click calls (一键外呼): a number dialled through the
    trunk, or a ``sip:`` URI; none: the account cannot place one-click calls."""


class AgentSession(Base):
    """A login: the console's cookie or bearer token, stored only as a hash."""

    __tablename__ = "oc_agent_sessions"
    token_hash = Column(String(64), primary_key=True)
    agent_id = Column(Integer, nullable=False, index=True)
    created_at = Column(UTCDateTime, nullable=False)
    expires_at = Column(UTCDateTime, nullable=False)
    revoked_at = Column(UTCDateTime)


class Call(Base):
    """One phone call (or attempt): how it ended and where its recording is on disk."""

    __tablename__ = "oc_calls"
    id = Column(String(128), primary_key=True)  # also the Rasa conversation id
    customer_id = Column(String(64), nullable=False, index=True)
    transport = Column(String(32), nullable=False)
    outcome = Column(vocabulary(CallOutcome, 32), nullable=False)
    ended_by = Column(vocabulary(EndedBy, 16), nullable=False)
    duration_ms = Column(Integer, nullable=False)
    handoff_id = Column(Integer)
    recording_path = Column(Text)
    transcript_path = Column(Text)
    error = Column(Text)
    started_at = Column(UTCDateTime, nullable=False)
    ended_at = Column(UTCDateTime, nullable=False)


class Campaign(Base):
    """An outbound campaign: whom to call (its targets), when and how (``config``)."""

    __tablename__ = "oc_campaigns"
    id = Column(String(64), primary_key=True)
    name = Column(String(200), nullable=False)
    status = Column(String(16), nullable=False)  # draft | running | paused | done
    transport = Column(String(32), nullable=False)
    config = Column(JSON, nullable=False)
    created_at = Column(UTCDateTime, nullable=False)
    updated_at = Column(UTCDateTime, nullable=False)


class CampaignTarget(Base):
    """One customer of a campaign: their script variant and where their dialling stands."""

    __tablename__ = "oc_campaign_targets"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id", name="uq_oc_campaign_targets_customer"),
        Index("ix_oc_campaign_targets_due", "campaign_id", "status", "next_attempt_at"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    campaign_id = Column(String(64), nullable=False)
    customer_id = Column(String(64), nullable=False)
    variant = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False)  # pending | dialing | done
    attempts = Column(Integer, nullable=False)
    next_attempt_at = Column(UTCDateTime)
    last_outcome = Column(vocabulary(DialOutcome, 32))
    final_reason = Column(Text)
    created_at = Column(UTCDateTime, nullable=False)
    updated_at = Column(UTCDateTime, nullable=False)
    plan_step = Column(Integer, nullable=False, default=0, server_default="0")
    """A campaign with a contact plan: the index of the customer's next step (``planned``
    targets wait for it at ``next_attempt_at``; see ``outbound.plan_runner``)."""
    plan_taken_at = Column(UTCDateTime)
    """When the customer's last step was taken."""
    arm = Column(String(8))
    """Response prediction's A/B arm: ``model`` (the model chose channel, hour and variant,
    see ``choice``) or ``fixed`` (the campaign's plan as written); None when not targeted."""
    choice = Column(JSON)
    """The model's choice for a ``model`` customer (``outbound.plan_choice.Choice``)."""


class CallAttempt(Base):
    """One dial of a campaign target. Written before the call is placed (status ``dialing``,
    with a lease the dialer renews), finished after it; never deleted."""

    __tablename__ = "oc_call_attempts"
    __table_args__ = (
        UniqueConstraint("target_id", "attempt_no", name="uq_oc_call_attempts_no"),
        Index("ix_oc_call_attempts_status", "status", "lease_until"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    target_id = Column(Integer, nullable=False)
    campaign_id = Column(String(64), nullable=False, index=True)
    customer_id = Column(String(64), nullable=False, index=True)
    attempt_no = Column(Integer, nullable=False)
    call_id = Column(String(128), nullable=False, unique=True)
    variant = Column(String(16), nullable=False)
    offer_id = Column(Integer)
    offer_version = Column(Integer)
    offer_terms = Column(JSON)
    status = Column(String(16), nullable=False)  # dialing | done | interrupted
    outcome = Column(vocabulary(DialOutcome, 32))
    dialer = Column(String(64), nullable=False)
    lease_until = Column(UTCDateTime, nullable=False)
    facts = Column(JSON, nullable=False)
    disclosure_proof = Column(JSON)
    handoff_id = Column(Integer)
    callback_at = Column(UTCDateTime)
    started_at = Column(UTCDateTime, nullable=False)
    ended_at = Column(UTCDateTime)


class AuditEntry(Base):
    """Who did what to which campaign, whitelist or customer, and when. Written in the same
    transaction as the change it records; never changed or deleted."""

    __tablename__ = "oc_audit_log"
    __table_args__ = (
        Index("ix_oc_audit_log_subject", "subject_kind", "subject_id", "id"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    at = Column(UTCDateTime, nullable=False)
    actor_id = Column(Integer)
    """The staff account (none for the command line)."""
    actor = Column(String(100), nullable=False)
    """The account's username, or ``cli:<os user>``."""
    actor_role = Column(String(32), nullable=False)
    action = Column(vocabulary(AuditAction, 32), nullable=False)
    subject_kind = Column(String(32), nullable=False)
    subject_id = Column(String(128), nullable=False)
    detail = Column(JSON, nullable=False)


class BranchLead(Base):
    """A customer a branch is to follow up in person (``branches.leads``). The step times are
    those at the branch the lead is with now; each branch's own are its
    :class:`BranchLeadAssignment`. Never deleted; every step is also a :class:`BranchLeadEvent`."""

    __tablename__ = "oc_leads"
    __table_args__ = (
        UniqueConstraint("source", "source_ref", name="uq_oc_leads_source"),
        Index("ix_oc_leads_branch", "branch_id", "status"),
        Index("ix_oc_leads_manager", "manager_id", "status"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    customer_id = Column(ForeignKey("oc_customers.customer_id"), nullable=False, index=True)
    source = Column(vocabulary(LeadSource, 32), nullable=False)
    """What made the customer a lead (later events about the same customer join it: see
    :class:`BranchLeadSource`)."""
    source_ref = Column(String(160), nullable=False)
    """Which one: ``ticket:<id>``, ``callback:<id>``, ``target:<campaign>/<customer>``."""
    branch_id = Column(String(32), nullable=False)
    manager_id = Column(Integer)
    """The account manager (an ``oc_agents`` id) following it up; none until the branch has one."""
    status = Column(vocabulary(LeadStatus, 16), nullable=False, index=True)
    outcome = Column(vocabulary(LeadOutcome, 16))
    """The furthest step recorded at the current branch; a final one closes the lead."""
    assigned_at = Column(UTCDateTime, nullable=False)
    claimed_at = Column(UTCDateTime)
    contacted_at = Column(UTCDateTime)
    verified_at = Column(UTCDateTime)
    closed_at = Column(UTCDateTime)
    created_at = Column(UTCDateTime, nullable=False)
    updated_at = Column(UTCDateTime, nullable=False)
    note = Column(Text)
    """The latest note an account manager left (every note is in the events)."""


class BranchLeadSource(Base):
    """Each event that made a customer a lead, at most once: the lead's own, and later ones
    about a customer whose lead was still open (they join it instead of opening another)."""

    __tablename__ = "oc_lead_sources"
    __table_args__ = (
        UniqueConstraint("source", "source_ref", name="uq_oc_lead_sources_source"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    lead_id = Column(ForeignKey("oc_leads.id"), nullable=False, index=True)
    source = Column(vocabulary(LeadSource, 32), nullable=False)
    source_ref = Column(String(160), nullable=False)
    at = Column(UTCDateTime, nullable=False)


class BranchLeadAssignment(Base):
    """One branch's time with a lead (an assignment period), which its scorecard judges: from
    the assignment until the lead was closed there or rerouted away."""

    __tablename__ = "oc_lead_assignments"
    __table_args__ = (
        Index("ix_oc_lead_assignments_branch", "branch_id", "assigned_at"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    lead_id = Column(ForeignKey("oc_leads.id"), nullable=False, index=True)
    branch_id = Column(String(32), nullable=False)
    distance_km = Column(Float)
    reason = Column(Text, nullable=False)
    """Why this branch (``lead_routing.Assignment.reason``)."""
    fallback = Column(Boolean, nullable=False)
    """No branch was eligible; this one took the lead anyway."""
    manager_id = Column(Integer)
    assigned_at = Column(UTCDateTime, nullable=False)
    claimed_at = Column(UTCDateTime)
    verified_at = Column(UTCDateTime)
    outcome = Column(vocabulary(LeadOutcome, 16))
    """The furthest step the branch got to."""
    ended_at = Column(UTCDateTime)
    end_reason = Column(String(32))
    """``closed`` (the lead's final outcome was recorded here) or a ``RerouteReason``."""


class BranchLeadEvent(Base):
    """One step of a lead: who, when, what, and for a re-route where from, where to and why."""

    __tablename__ = "oc_lead_events"
    __table_args__ = (
        Index("ix_oc_lead_events_lead", "lead_id", "id"),
        Index("ix_oc_lead_events_manager", "manager_id", "kind", "at"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    lead_id = Column(ForeignKey("oc_leads.id"), nullable=False)
    at = Column(UTCDateTime, nullable=False)
    actor = Column(String(64), nullable=False)
    kind = Column(String(16), nullable=False)
    """``branches.leads.LeadEventKind``: assigned, manager, claimed, contacted, visited,
    verified, outcome, rerouted, note."""
    manager_id = Column(Integer)
    """The account manager the step gave the lead to, or who took it."""
    from_branch = Column(String(32))
    to_branch = Column(String(32))
    reason = Column(Text, nullable=False)
    detail = Column(JSON, nullable=False)


class ClickCall(Base):
    """A one-click call (一键外呼, ``branches.click_calls``): an account manager asked for it on a
    lead; a dialer worker rings the manager's phone, then the customer's, and bridges them.
    ``lead_id`` of a call not yet ended is unique: one call at a time per lead."""

    __tablename__ = "oc_click_calls"
    __table_args__ = (
        Index("ix_oc_click_calls_status", "status", "requested_at"),
        Index("uq_oc_click_calls_live_lead", "live_lead_id", unique=True),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    lead_id = Column(ForeignKey("oc_leads.id"), nullable=False, index=True)
    live_lead_id = Column(Integer)
    """``lead_id`` until the call has ended, then NULL: its unique index lets one call per lead
    be in progress (NULLs never collide, on SQLite and PostgreSQL alike)."""
    customer_id = Column(String(64), nullable=False)
    manager_id = Column(Integer, nullable=False)
    """The ``oc_agents`` id who asked for it and whose phone rings first."""
    status = Column(String(20), nullable=False)
    """``branches.click_calls.ClickCallStatus``: requested, ringing_manager, ringing_customer,
    bridged, ended, failed."""
    worker = Column(String(100))
    """The dialer worker that claimed it."""
    lease_until = Column(UTCDateTime)
    """The worker renews this while it holds the call; past it, the call was interrupted."""
    requested_at = Column(UTCDateTime, nullable=False)
    manager_answered_at = Column(UTCDateTime)
    customer_answered_at = Column(UTCDateTime)
    """When the two were bridged (the customer answered)."""
    ended_at = Column(UTCDateTime)
    duration_ms = Column(Integer)
    """Talk time: from the bridge to the first hang-up."""
    ended_by = Column(String(16))
    """``manager`` or ``customer`` (who hung up first), or ``system``."""
    recording_path = Column(Text)
    failure = Column(String(32))
    """Why it did not connect: a ``CallOutcome`` of a leg with ``manager_`` or ``customer_``
    before it (``manager_no_answer``, ``customer_busy``), ``interrupted``, ``do_not_contact``,
    ``outside_window``, ``no_line``."""
    detail = Column(JSON, nullable=False)
    """SIP codes and timings of the two legs."""


class SmsMessage(Base):
    """One text message, out to a customer or in from one. Written before it is handed to the
    gateway; delivery reports move its status forward. Never deleted."""
    __tablename__ = "oc_sms_messages"
    __table_args__ = (
        Index("ix_oc_sms_messages_campaign", "campaign_id", "status"),
        Index("ix_oc_sms_messages_phone", "phone", "id"),
        Index("uq_oc_sms_messages_ref", "gateway", "gateway_ref", unique=True),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    direction = Column(String(3), nullable=False)  # out | in
    campaign_id = Column(String(64))
    customer_id = Column(String(64), index=True)
    phone = Column(String(20), nullable=False)
    text = Column(Text, nullable=False)
    template = Column(String(64))
    variant = Column(String(16))
    gateway = Column(String(32), nullable=False)
    status = Column(vocabulary(SmsStatus, 16), nullable=False)
    dlr_code = Column(Integer)
    """The code of the delivery report that gave the message its status (Kannel's: 1
    delivered, 2 failed, 4 buffered, 8 sent to the SMSC, 16 refused by it)."""
    detail = Column(Text)
    """The gateway's answer, or why the message failed."""
    conversation_id = Column(String(128))
    """A reply: the conversation it went to (the bot's or an agent's)."""
    gateway_ref = Column(String(64))
    """A reply: the gateway's id of it (Kannel's ``%I``), the same when the gateway delivers it
    again; unique per gateway."""
    created_at = Column(UTCDateTime, nullable=False)
    submitted_at = Column(UTCDateTime)
    sent_at = Column(UTCDateTime)
    delivered_at = Column(UTCDateTime)
    updated_at = Column(UTCDateTime, nullable=False)


class AppPopup(Base):
    """A pop-up the mobile-banking app shows a customer, which opens the chat. Never deleted."""
    __tablename__ = "oc_app_popups"
    __table_args__ = (
        Index("ix_oc_app_popups_customer", "customer_id", "status"),
        Index("ix_oc_app_popups_campaign", "campaign_id", "status"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    campaign_id = Column(String(64))
    customer_id = Column(String(64), nullable=False)
    title = Column(String(100), nullable=False)
    body = Column(Text, nullable=False)
    variant = Column(String(16))
    status = Column(vocabulary(PopupStatus, 16), nullable=False)
    created_at = Column(UTCDateTime, nullable=False)
    expires_at = Column(UTCDateTime, nullable=False)
    shown_at = Column(UTCDateTime)
    clicked_at = Column(UTCDateTime)
    dismissed_at = Column(UTCDateTime)
    updated_at = Column(UTCDateTime, nullable=False)


class PlanStepTaken(Base):
    """One step of a contact plan taken for one customer: what it did and what came of it.
    Never changed or deleted; the cross-channel funnel and the branch leads read them."""
    __tablename__ = "oc_plan_steps"
    __table_args__ = (
        UniqueConstraint("target_id", "step_no", name="uq_oc_plan_steps_step"),
        Index("ix_oc_plan_steps_campaign", "campaign_id", "channel"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    target_id = Column(Integer, nullable=False)
    campaign_id = Column(String(64), nullable=False)
    customer_id = Column(String(64), nullable=False)
    step_no = Column(Integer, nullable=False)
    channel = Column(String(16), nullable=False)
    result = Column(String(32), nullable=False)
    """``sent`` (a text handed to the gateway), ``queued`` (its gateway was away), ``shown``…:
    what the channel said; or why the step did nothing (``do_not_contact``, ``no_sms``)."""
    ref = Column(String(64))
    """The message, pop-up or call attempt the step made."""
    taken_at = Column(UTCDateTime, nullable=False)


# --- loan outcomes (lending.loan_outcomes) -------------------------------------------------


class LoanEventRecord(Base):
    """One outcome the loan system reported for one application (``core.vocabulary.LoanStatus``):
    applied, auto-approved or approved, disbursed, declined, withdrawn. Never changed or
    deleted. An application's events are a chain, its n-th event step n: (application, step)
    is unique, so two writers cannot both extend one application; ``event_id`` (the loan
    system's) is unique, so a report sent again is recorded once."""

    __tablename__ = "oc_loan_events"
    __table_args__ = (
        UniqueConstraint("event_id", name="uq_oc_loan_events_event_id"),
        UniqueConstraint("application_id", "step", name="uq_oc_loan_events_step"),
        Index("ix_oc_loan_events_customer", "customer_id", "occurred_at"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    event_id = Column(String(64), nullable=False)
    customer_id = Column(ForeignKey("oc_customers.customer_id"), nullable=False)
    application_id = Column(String(64), nullable=False)
    step = Column(Integer, nullable=False)
    status = Column(vocabulary(LoanStatus, 16), nullable=False)
    occurred_at = Column(UTCDateTime, nullable=False)
    amount_fen = Column(BigInteger)
    """Yuan × 100, exact: asked for (applied), granted (approved), paid out (disbursed)."""
    branch_id = Column(String(32))
    """The branch that books the loan, when the loan system says."""
    source = Column(String(200), nullable=False)
    """Where it came from: ``api:<request nonce>`` or ``file:<file name>:<line>``."""
    received_at = Column(UTCDateTime, nullable=False)


class LoanRequestNonce(Base):
    """The nonce of every signed loan-API request within the timestamp window (older ones are
    deleted as new ones come): the same nonce again is a replay, refused."""

    __tablename__ = "oc_loan_request_nonces"
    nonce = Column(String(64), primary_key=True)
    received_at = Column(UTCDateTime, nullable=False, index=True)


# --- post-loan alerts (lending.settlements, lending.alerts) --------------------------------


class Settlement(Base):
    """One settlement of a customer's takings as the bank's settlement system reports it, by
    file or signed API call (``lending.settlements``). ``ref`` is that system's id of the
    record: the same record sent again changes nothing. Never changed or deleted."""

    __tablename__ = "oc_settlements"
    __table_args__ = (
        UniqueConstraint("ref", name="uq_oc_settlements_ref"),
        Index("ix_oc_settlements_customer", "customer_id", "settled_on"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    ref = Column(String(64), nullable=False)
    customer_id = Column(ForeignKey("oc_customers.customer_id"), nullable=False)
    settled_on = Column(Date, nullable=False)
    """The bank's local date of the settlement."""
    amount_fen = Column(BigInteger, nullable=False)
    """The amount in fen (1/100 yuan), exactly."""
    payer = Column(String(100), nullable=False)
    """Who paid it (the counterparty), as the settlement system names them."""
    source = Column(String(200), nullable=False)
    """``file:<name>`` or ``api:<nonce>``: which import brought it."""
    received_at = Column(UTCDateTime, nullable=False)


class SettlementNonce(Base):
    """A signed request of the settlement API, remembered by its nonce (the same nonce again is
    a replay, refused); forgotten once far older than the signatures' time window."""

    __tablename__ = "oc_settlement_nonces"
    nonce = Column(String(64), primary_key=True)
    received_at = Column(UTCDateTime, nullable=False, index=True)


class PostLoanAlert(Base):
    """A post-loan alert (贷后预警) a rule raised on a customer's settlements, for the account
    manager who owns the customer (``lending.alerts``). One per customer, rule and period;
    acknowledged once, with a note; escalated to the branch's managers when still open past
    ``due_at``. Never deleted."""

    __tablename__ = "oc_alerts"
    __table_args__ = (
        UniqueConstraint("customer_id", "rule", "period", name="uq_oc_alerts_rule_period"),
        Index("ix_oc_alerts_branch", "branch_id", "status"),
        Index("ix_oc_alerts_manager", "manager_id", "status"),
        Index("ix_oc_alerts_due", "status", "due_at"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    customer_id = Column(ForeignKey("oc_customers.customer_id"), nullable=False)
    rule = Column(vocabulary(AlertRule, 32), nullable=False)
    period = Column(String(32), nullable=False)
    """The month judged (``2026-11``) or, for no settlement, the first day without one."""
    figures = Column(JSON, nullable=False)
    """The rule's figures (``lending.alert_rules``: the amounts, shares, days and threshold)."""
    summary = Column(Text, nullable=False)
    """What the rule found, in Chinese, as the managers read it."""
    branch_id = Column(String(32))
    """The customer's branch (none: their region has no branch; head office sees it)."""
    manager_id = Column(Integer)
    """The account manager (``oc_agents``) who owns the customer; none: the branch manager's to give out."""
    owner_reason = Column(Text, nullable=False)
    """Why this branch and manager (the customer's lead, or the branch nearest their region)."""
    status = Column(vocabulary(AlertStatus, 16), nullable=False)
    raised_at = Column(UTCDateTime, nullable=False)
    due_at = Column(UTCDateTime, nullable=False)
    """Acknowledged by then, or escalated."""
    escalated_at = Column(UTCDateTime)
    escalated_to = Column(JSON)
    """The branch managers (``oc_agents`` ids) it was escalated to."""
    acknowledged_at = Column(UTCDateTime)
    acknowledged_by = Column(Integer)
    note = Column(Text)
    """The acknowledgement's note."""
    updated_at = Column(UTCDateTime, nullable=False)


# --- partner intake (lending.intake, lending.partner_callbacks) ----------------------------


class PartnerApplication(Base):
    """An applicant a partner system submitted through the signed intake API, with the
    admission decision (``lending.intake``). One per partner and partner application id: a
    resubmission answers this row and makes no second lead. Never deleted. Personal data is
    kept masked here (the admitted applicant's name and phone are the customer row's)."""

    __tablename__ = "oc_partner_applications"
    __table_args__ = (
        UniqueConstraint("partner_id", "partner_application_id",
                         name="uq_oc_partner_applications_ref"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    partner_id = Column(String(32), nullable=False)
    partner_application_id = Column(String(64), nullable=False)
    digest = Column(String(64), nullable=False)
    """SHA-256 of the application as read: a resubmission must say the same."""
    status = Column(String(16), nullable=False)
    """``lending.intake_rules.ApplicationStatus``: admitted or refused."""
    reasons = Column(JSON, nullable=False)
    """Why it was refused: ``[{"code", "message"}]`` (the messages in Chinese); empty when admitted."""
    applicant = Column(JSON, nullable=False)
    """What was submitted, masked (name, phone, ID number) and summed up (settlements)."""
    requested_amount_yuan = Column(Integer, nullable=False)
    amount_yuan = Column(Integer)
    """The amount offered (admitted only): the request, capped by the settlement-based limit."""
    customer_id = Column(ForeignKey("oc_customers.customer_id"), index=True)
    """The customer the applicant is (admitted only: refused applicants make no customer)."""
    lead_id = Column(ForeignKey("oc_leads.id"))
    branch_id = Column(String(32))
    campaign_id = Column(String(64))
    """The campaign the admitted applicant joined, if any."""
    received_at = Column(UTCDateTime, nullable=False)


class PartnerCallback(Base):
    """An application's result, posted (signed) to its partner's callback URL until the partner
    acknowledges it with a 2xx (``lending.partner_callbacks``). Taken by one sender at a time
    (``sending`` with a lease); back to ``pending`` with a later ``next_attempt_at`` after a
    failure. Never deleted."""

    __tablename__ = "oc_partner_callbacks"
    __table_args__ = (
        UniqueConstraint("application_id", name="uq_oc_partner_callbacks_application"),
        Index("ix_oc_partner_callbacks_due", "status", "next_attempt_at"),
    )
    id = Column(Integer, primary_key=True, autoincrement=True)
    application_id = Column(ForeignKey("oc_partner_applications.id"), nullable=False)
    partner_id = Column(String(32), nullable=False)
    body = Column(Text, nullable=False)
    """The JSON posted, exactly as signed (the same on every attempt)."""
    status = Column(String(16), nullable=False)
    """``lending.partner_callbacks.CallbackStatus``: pending, sending, delivered, abandoned."""
    attempts = Column(Integer, nullable=False)
    next_attempt_at = Column(UTCDateTime)
    """When a ``pending`` result is due to be posted (again)."""
    lease_until = Column(UTCDateTime)
    """A ``sending`` result's sender holds it until then; past it (the sender died), another
    sender takes it."""
    sender = Column(String(100))
    """The process posting it (or that last did)."""
    last_status = Column(Integer)
    """The HTTP status of the last answer (none: no answer)."""
    last_error = Column(Text)
    created_at = Column(UTCDateTime, nullable=False)
    updated_at = Column(UTCDateTime, nullable=False)
    delivered_at = Column(UTCDateTime)


class PartnerNonce(Base):
    """The nonce of every signed partner request within the timestamp window (older ones are
    forgotten): the same nonce again from the same partner is a replay, refused."""

    __tablename__ = "oc_partner_nonces"
    partner_id = Column(String(32), primary_key=True)
    nonce = Column(String(64), primary_key=True)
    received_at = Column(UTCDateTime, nullable=False, index=True)

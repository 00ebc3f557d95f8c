"""offercall's vocabulary: how conversations, calls and tickets end up, spelled once.

Each is a ``str`` enum, so a member *is* its string: it compares equal to it, goes into JSON
and SQL as it, and prints as it. The schema stores the values; the decision modules (retry,
funnel, routing) and the channels use the members.

How the three outcome vocabularies relate::

    ConversationOutcome  what the bot decided (its ``hangup`` directive, the conversation row)
        ⊂ CallOutcome    how a phone call ended: the conversation's outcome, or what happened
                         on the line (hung up, voicemail, busy, the network failed …)
        → DialOutcome    what a campaign schedules by (``DIAL_OUTCOME_OF_CALL``): retry, stop,
                         or hand over to the agents
"""

from __future__ import annotations

from enum import Enum
from types import MappingProxyType


class StrEnum(str, Enum):
    """A string enum whose members print as their values (Python 3.10 has no ``enum.StrEnum``)."""

    def __str__(self) -> str:
        return str(self.value)


class ConversationOutcome(StrEnum):
    """What the bot decided a conversation came to (chat or call)."""

    TRANSFERRED = "transferred"
    CALLBACK = "callback"
    NOT_INTERESTED = "not_interested"
    OPT_OUT = "opt_out"
    WRONG_PERSON = "wrong_person"
    ALREADY_HAS_LOAN = "already_has_loan"
    NO_RESPONSE = "no_response"
    ENDED = "ended"


class CallOutcome(StrEnum):
    """How a phone call ended."""

    # the conversation's outcome, decided by the bot
    TRANSFERRED = "transferred"
    CALLBACK = "callback"
    NOT_INTERESTED = "not_interested"
    OPT_OUT = "opt_out"
    WRONG_PERSON = "wrong_person"
    ALREADY_HAS_LOAN = "already_has_loan"
    NO_RESPONSE = "no_response"
    ENDED = "ended"
    # what happened on the line
    HUNG_UP = "hung_up"
    """The customer hung up before the bot ended the call."""
    MAX_DURATION = "max_duration"
    VOICEMAIL = "voicemail"
    ERROR = "error"
    """The bot or the call failed; the customer heard an apology where possible."""
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    DECLINED = "declined"
    """The customer rejected the call (SIP 603)."""
    UNREACHABLE = "unreachable"
    """The trunk or the carrier failed (SIP 5xx, no response)."""
    INVALID_NUMBER = "invalid_number"
    """No such number (SIP 404 and kin)."""
    FAILED = "failed"
    """The network refused us (our credentials, an unacceptable offer)."""


class DialOutcome(StrEnum):
    """What a campaign attempt came to, as the dialer schedules it and the funnel counts it."""

    TRANSFERRED = "transferred"
    CALLBACK = "callback"
    NOT_INTERESTED = "not_interested"
    OPT_OUT = "opt_out"
    WRONG_PERSON = "wrong_person"
    ALREADY_HAS_LOAN = "already_has_loan"
    NO_RESPONSE = "no_response"
    ENDED = "ended"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    DECLINED = "declined"
    UNREACHABLE = "unreachable"
    INVALID_NUMBER = "invalid_number"
    VOICEMAIL = "voicemail"
    DROPPED = "dropped"
    """The call was cut off before the conversation ended (or its dialer died)."""
    FAILED = "failed"
    DO_NOT_CONTACT = "do_not_contact"
    """The customer was on the do-not-contact list when the call connected."""


DIAL_OUTCOME_OF_CALL: MappingProxyType[CallOutcome, DialOutcome] = MappingProxyType({
    **{CallOutcome(o.value): DialOutcome(o.value) for o in ConversationOutcome},
    CallOutcome.NO_ANSWER: DialOutcome.NO_ANSWER,
    CallOutcome.BUSY: DialOutcome.BUSY,
    CallOutcome.DECLINED: DialOutcome.DECLINED,
    CallOutcome.UNREACHABLE: DialOutcome.UNREACHABLE,
    CallOutcome.INVALID_NUMBER: DialOutcome.INVALID_NUMBER,
    CallOutcome.VOICEMAIL: DialOutcome.VOICEMAIL,
    CallOutcome.HUNG_UP: DialOutcome.DROPPED,
    CallOutcome.MAX_DURATION: DialOutcome.ENDED,
    CallOutcome.ERROR: DialOutcome.FAILED,
    CallOutcome.FAILED: DialOutcome.FAILED,
})
"""How each way a call can end counts for its campaign."""


class EndedBy(StrEnum):
    """Who or what ended a call."""

    BOT = "bot"
    CUSTOMER = "customer"
    AGENT = "agent"
    TIMEOUT = "timeout"
    """The maximum call duration."""
    ERROR = "error"
    NETWORK = "network"
    """The call never connected (no answer, busy, refused)."""


class AgentOutcome(StrEnum):
    """How an agent closed a ticket."""

    APPLIED = "applied"
    FOLLOW_UP = "follow_up"
    NOT_QUALIFIED = "not_qualified"
    OTHER = "other"


class TicketStatus(StrEnum):
    """Where a handoff ticket is in its life (see ``handoff.routing.TRANSITIONS``)."""

    QUEUED = "queued"
    OFFERED = "offered"
    CLAIMED = "claimed"
    CONNECTED = "connected"
    CLOSED = "closed"
    ABANDONED = "abandoned"
    REROUTED = "rerouted"


class Channel(StrEnum):
    """How a customer talks to offercall."""

    VOICE = "voice"
    """A phone call."""
    CHAT = "chat"
    """The in-app chat."""
    SMS = "sms"
    """Text messages through the SMS gateway."""


class Role(StrEnum):
    """What a staff account may do (see ``core.access``)."""

    ADMIN = "admin"
    CAMPAIGN_MANAGER = "campaign_manager"
    """Head office: whitelists, campaigns and their reports."""
    SUPERVISOR = "supervisor"
    """Watches the agents' floor and the live campaigns; works any ticket."""
    BRANCH_MANAGER = "branch_manager"
    """One branch's leads, staff and customers."""
    ACCOUNT_MANAGER = "account_manager"
    """客户经理: a branch's staff who follow up the branch's leads given to them."""
    AGENT = "agent"
    """Takes over calls and chats."""


class CampaignStatus(StrEnum):
    """Where a campaign is in its life (see ``outbound.lifecycle``)."""

    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    """Stopped by a manager before it was done; nobody more is dialled."""
    DONE = "done"
    """Every customer reached a final outcome."""


class AuditAction(StrEnum):
    """What a person did that the audit trail keeps."""

    CAMPAIGN_CREATED = "campaign_created"
    CAMPAIGN_CHANGED = "campaign_changed"
    CAMPAIGN_STARTED = "campaign_started"
    CAMPAIGN_PAUSED = "campaign_paused"
    CAMPAIGN_RESUMED = "campaign_resumed"
    CAMPAIGN_STOPPED = "campaign_stopped"
    CAMPAIGN_TARGETED = "campaign_targeted"
    """Response prediction chose channel, hour and variant for part of its customers."""
    WHITELIST_IMPORTED = "whitelist_imported"
    UNMASKED_VIEWED = "unmasked_viewed"
    """Somebody saw a phone or ID number in full."""
    ALERT_ACKNOWLEDGED = "alert_acknowledged"
    """A post-loan alert was acknowledged, with a note (``lending.alerts``)."""
    ALERT_ASSIGNED = "alert_assigned"
    """A branch manager gave a post-loan alert to an account manager."""
    SETTLEMENTS_IMPORTED = "settlements_imported"
    """A settlement file was loaded (``offercall alerts import``)."""


class LeadStatus(StrEnum):
    """Where a branch lead is in its life (see ``branches.deadlines``)::

        assigned -> claimed -> contacted -> verified -> closed
           any open status -> rerouted (that branch's assignment ends; the lead is assigned
                                        to another branch)
    """

    ASSIGNED = "assigned"
    """Routed to a branch, waiting for it to claim the lead."""
    CLAIMED = "claimed"
    """The branch took the lead; an account manager has it."""
    CONTACTED = "contacted"
    """The account manager reached the customer."""
    VERIFIED = "verified"
    """The branch finished the offline verification."""
    CLOSED = "closed"
    """The lead has its final outcome (``FINAL_LEAD_OUTCOMES``)."""
    REROUTED = "rerouted"
    """Taken away from a branch (a missed deadline, a suspended branch, a supervisor)."""


class LeadOutcome(StrEnum):
    """What a branch's work on a lead came to, step by step; the last three are final."""

    CONTACTED = "contacted"
    VISITED = "visited"
    """The customer came to the branch, or the manager went to the customer."""
    VERIFIED = "verified"
    APPLIED = "applied"
    """The customer applied for the loan: a conversion."""
    DECLINED = "declined"
    """The customer does not want the loan (or does not qualify)."""
    UNREACHABLE = "unreachable"
    """The branch could not reach the customer."""


FINAL_LEAD_OUTCOMES = frozenset(
    {LeadOutcome.APPLIED, LeadOutcome.DECLINED, LeadOutcome.UNREACHABLE}
)
"""The outcomes that close a lead; a branch's conversion is applied / these."""


class LeadSource(StrEnum):
    """Why a customer became a branch lead."""

    BOT_INTERESTED_NOT_CONNECTED = "bot_interested_not_connected"
    """Interested on a bot call or chat, but no agent took the handoff."""
    CALLBACK_TASK = "callback_task"
    """A callback task the agents' pool did not work."""
    CAMPAIGN_UNREACHED = "campaign_unreached"
    """A campaign never reached the customer by phone, SMS or pop-up."""
    CONTACT_PLAN = "contact_plan"
    """A campaign's contact plan reached its branch step (e.g. day 5) with the customer
    neither opted out, applied nor refused."""
    PARTNER_INTAKE = "partner_intake"
    """Sent by a partner (e.g. the medical-insurance platform) to be served in person."""


class RerouteReason(StrEnum):
    """Why a lead was taken from its branch and assigned to another."""

    CLAIM_OVERDUE = "claim_overdue"
    """The branch did not claim the lead in time."""
    VERIFY_OVERDUE = "verify_overdue"
    """The branch claimed the lead but did not finish the verification in time."""
    BRANCH_SUSPENDED = "branch_suspended"
    """The branch's scorecard fell below the threshold."""
    MANUAL = "manual"
    """A supervisor moved the lead."""


class SmsStatus(StrEnum):
    """Where a text message is. Outgoing::

        queued -> submitted -> sent -> delivered
                     any not final -> failed

    An incoming message (a customer's reply) is ``received``. A late delivery report never
    moves a message back (see ``outbound.sms``)."""

    QUEUED = "queued"
    """Written, not yet handed to the gateway."""
    SUBMITTED = "submitted"
    """The gateway accepted it."""
    SENT = "sent"
    """The operator's SMSC took it (delivery report 8)."""
    DELIVERED = "delivered"
    """The phone has it (delivery report 1)."""
    FAILED = "failed"
    """The gateway refused it, or the SMSC or the phone did not take it (reports 2 and 16)."""
    RECEIVED = "received"
    """A message from a customer."""


class PopupStatus(StrEnum):
    """Where an app pop-up is::

        pending -> shown -> clicked | dismissed
        pending -> withdrawn (the customer opted out, or the campaign stopped)

    A pop-up past its expiry is no longer served; its status stays what it was."""

    PENDING = "pending"
    SHOWN = "shown"
    CLICKED = "clicked"
    """The customer opened the chat from it."""
    DISMISSED = "dismissed"
    WITHDRAWN = "withdrawn"


class LoanStatus(StrEnum):
    """What the loan system reports of a loan application (see ``lending.loan_rules``)::

        applied -> auto_approved | approved -> disbursed
        applied, auto_approved, approved -> declined | withdrawn (the application ends)
    """

    APPLIED = "applied"
    AUTO_APPROVED = "auto_approved"
    """Approved by the loan system's rules, without a credit officer."""
    APPROVED = "approved"
    """Approved by a credit officer."""
    DISBURSED = "disbursed"
    """The money is in the customer's account: the end of the funnel."""
    DECLINED = "declined"
    """The bank turned the application down."""
    WITHDRAWN = "withdrawn"
    """The customer gave up the application."""


class AlertRule(StrEnum):
    """Which post-loan rule raised an alert (see ``lending.alert_rules``)."""

    MONTH_DROP = "month_drop"
    """A month's settlements fell from the month before by more than the threshold."""
    NO_SETTLEMENT = "no_settlement"
    """No settlement for more than the threshold's days."""
    PAYER_CONCENTRATION = "payer_concentration"
    """One payer's share of a month rose above the threshold from below it."""


class AlertStatus(StrEnum):
    """Where a post-loan alert is: ``open`` until its owner acknowledges it with a note. An
    open alert past its deadline is escalated to the branch manager (``escalated_at``), and
    stays open until acknowledged."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


MUST_BE_HEARD = ("disclosure", "offer")
"""The bot's prompts a customer must hear in full: when a barge-in cuts one off, the voice
channel tells the bot, which says it again, whole, before going on."""

"""What an agent's console shows of a ticket (pure).

Personal data stays masked (name, phone, and numbers said in the transcript) unless the
viewer has claimed the ticket and needs it to talk to the customer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.masking import mask_phone, mask_text
from handoff.agents import AgentAccount
from handoff.messages import LoggedMessage
from handoff.tickets import Ticket


def owns(viewer: AgentAccount, ticket: Ticket) -> bool:
    """True when the viewer has claimed this ticket."""
    return ticket.claimed_by == viewer.id


def ticket_view(
    ticket: Ticket, viewer: AgentAccount, now: datetime, branches: dict[str, str],
    live: list[LoggedMessage] | None = None,
) -> dict[str, Any]:
    """The ticket as JSON for ``viewer``'s console."""
    mine = owns(viewer, ticket)
    clean = (lambda text: text) if mine else mask_text
    return {
        "id": ticket.id,
        "conversation_id": ticket.conversation_id,
        "channel": ticket.channel,
        "kind": ticket.kind,
        "tier": ticket.tier,
        "status": ticket.status,
        "mine": mine,
        "claimed_by": ticket.claimed_by,
        "customer": {
            "id": ticket.customer_id,
            "name": ticket.full_name if mine else ticket.masked_name,
            "phone": ticket.phone if mine else mask_phone(ticket.phone) if ticket.phone else "",
            "region": ticket.region,
        },
        "branch": {"id": ticket.branch_id, "name": branches.get(ticket.branch_id or "", "")},
        "offer": {
            "product": ticket.product, "amount_yuan": ticket.amount_yuan,
            "rate_min": ticket.rate_min, "rate_max": ticket.rate_max,
            "term_months": ticket.term_months,
        },
        "reason": ticket.reason,
        "intents": ticket.intents,
        "transcript": [
            {"speaker": line.get("speaker"), "text": clean(str(line.get("text", "")))}
            for line in ticket.transcript
        ],
        "live": [message_view(message, mine) for message in (live or [])],
        "waiting_s": round(max(0.0, (now - ticket.waiting_since).total_seconds()), 1),
        "created_at": ticket.created_at.isoformat(),
        "claimed_at": ticket.claimed_at.isoformat() if ticket.claimed_at else None,
        "connected_at": ticket.connected_at.isoformat() if ticket.connected_at else None,
        "claim_deadline": ticket.claim_deadline.isoformat() if ticket.claim_deadline else None,
        "callback_due_at": ticket.callback_due_at.isoformat() if ticket.callback_due_at else None,
        "agent_outcome": ticket.agent_outcome,
        "transfer": None if ticket.transfer_mode is None else {
            "mode": ticket.transfer_mode, "target": ticket.transfer_target,
            "status": ticket.transfer_status,
            "at": ticket.transferred_at.isoformat() if ticket.transferred_at else None,
        },
    }


def message_view(message: LoggedMessage, mine: bool) -> dict[str, Any]:
    """A live message of a ticket's conversation, masked unless the viewer owns the ticket."""
    return {
        "id": message.id, "sender": message.sender,
        "text": message.text if mine else mask_text(message.text),
        "at": message.created_at.isoformat(),
    }

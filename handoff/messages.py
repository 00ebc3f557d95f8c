"""The message log: what the customer, the bot, the agent and the system said in a
conversation that goes through the handoff (chat, or a call once it is with an agent).

Ids order the log. A client that reconnects asks for everything after the last id it saw,
so nothing is lost; a client resending a message it is unsure about uses the same client
message id, so nothing is doubled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from persistence.schema import Message

SENDERS = ("customer", "bot", "agent", "system")
MAX_TEXT = 2000


@dataclass(frozen=True)
class LoggedMessage:
    """One message as stored."""

    id: int
    conversation_id: str
    sender: str
    text: str
    client_msg_id: str | None
    handoff_id: int | None
    agent_id: int | None
    data: dict[str, Any]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The message as clients receive it."""
        return {
            "id": self.id, "conversation_id": self.conversation_id, "sender": self.sender,
            "text": self.text, "client_id": self.client_msg_id, "handoff_id": self.handoff_id,
            "data": self.data, "at": self.created_at.isoformat(),
        }


def _logged(row: Message) -> LoggedMessage:
    return LoggedMessage(
        id=row.id, conversation_id=row.conversation_id, sender=row.sender, text=row.text,
        client_msg_id=row.client_msg_id, handoff_id=row.handoff_id, agent_id=row.agent_id,
        data=dict(row.data or {}), created_at=row.created_at,
    )


def post(
    session: Session, *, conversation_id: str, sender: str, text: str, now: datetime,
    client_msg_id: str | None = None, handoff_id: int | None = None, agent_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> tuple[LoggedMessage, bool]:
    """Appends a message; returns it and whether it is new. A repeated ``client_msg_id`` in
    the same conversation returns the stored message instead of a second copy."""
    if sender not in SENDERS:
        raise ValueError(f"sender must be one of {', '.join(SENDERS)}, got {sender!r}")
    if len(text) > MAX_TEXT:
        raise ValueError(f"a message has at most {MAX_TEXT} characters")
    if client_msg_id is not None:
        existing = _by_client_id(session, conversation_id, client_msg_id)
        if existing is not None:
            return existing, False
    row = Message(
        conversation_id=conversation_id, sender=sender, text=text, client_msg_id=client_msg_id,
        handoff_id=handoff_id, agent_id=agent_id, data=data or {}, created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # the same client id raced in from another connection
        existing = _by_client_id(session, conversation_id, client_msg_id or "")
        if existing is None:
            raise
        return existing, False
    return _logged(row), True


def _by_client_id(session: Session, conversation_id: str, client_msg_id: str) -> LoggedMessage | None:
    row = session.execute(
        select(Message).where(
            Message.conversation_id == conversation_id, Message.client_msg_id == client_msg_id
        )
    ).scalar_one_or_none()
    return _logged(row) if row is not None else None


def history(session: Session, conversation_id: str, after_id: int = 0, limit: int = 1000) -> list[LoggedMessage]:
    """The conversation's messages after ``after_id``, oldest first."""
    rows = session.execute(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.id > after_id)
        .order_by(Message.id)
        .limit(limit)
    ).scalars()
    return [_logged(row) for row in rows]


def last(session: Session, conversation_id: str) -> LoggedMessage | None:
    """The conversation's newest message (None when it has none)."""
    row = session.execute(
        select(Message).where(Message.conversation_id == conversation_id)
        .order_by(Message.id.desc()).limit(1)
    ).scalar_one_or_none()
    return _logged(row) if row is not None else None


def messages_after(session: Session, after_id: int, limit: int = 500) -> list[LoggedMessage]:
    """Every conversation's messages after ``after_id`` (the feed tails this)."""
    rows = session.execute(select(Message).where(Message.id > after_id).order_by(Message.id).limit(limit)).scalars()
    return [_logged(row) for row in rows]


def last_message_id(session: Session) -> int:
    """The highest message id so far (0 when none)."""
    return session.execute(select(func.max(Message.id))).scalar() or 0

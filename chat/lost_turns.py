"""Turns a dead web server can no longer answer.

A customer's chat message is written to the log first, then taken to the bot by the web
server that received it; the bot's answer is logged when it comes. If that server dies in
between (``kill -9``, a crash, its machine), the message is stored but nobody will ever
answer it, and the customer, whose widget reconnects to another server, would wait for
nothing. So the message carries its owner (:mod:`core.owners`) while its turn is with the
bot, and the server the customer reconnects to checks the conversation's last message: a
customer's message whose owner is gone gets an apology asking them to say it again.

The turn is not replayed to the bot: the dead server may already have had it processed
(its actions run, a call-back booked), and a second run could do it twice. The apology is
logged once, whichever servers find the lost turn (its client id is the lost message's).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from core.owners import Owner, is_orphaned
from handoff import messages

TURN_OWNER = "turn_by"
"""The key, in a customer message's data, of the server that took its turn to the bot."""

LOST_TURN_APOLOGY = "抱歉，刚才系统出了点问题，您的上一条消息没有收到回复，请您再说一遍。"

STALE_AFTER = timedelta(seconds=30)
"""After this, an unanswered turn is lost whoever owns it: a living server answers or
apologises within the chat timeout (seconds), so its owner is gone, even on another host."""


def is_lost(message: messages.LoggedMessage, *, me: Owner, pid_alive: Callable[[str], bool],
            now: datetime, stale_after: timedelta = STALE_AFTER) -> bool:
    """Whether ``message`` (a conversation's last) is a customer's turn that its server
    took to the bot and can no longer answer (pure but for ``pid_alive``)."""
    owner = message.data.get(TURN_OWNER)
    if message.sender != "customer" or not isinstance(owner, str):
        return False
    if now - message.created_at >= stale_after:
        return True
    return is_orphaned(owner, me=me, pid_alive=pid_alive(owner))


def apologise_if_lost(session: Session, conversation_id: str, now: datetime, *, me: Owner,
                      pid_alive: Callable[[str], bool]) -> messages.LoggedMessage | None:
    """Logs the apology for the conversation's lost turn, if its last message is one; returns
    the apology (the same one if another server logged it first), or None."""
    last = messages.last(session, conversation_id)
    if last is None or not is_lost(last, me=me, pid_alive=pid_alive, now=now):
        return None
    apology, _ = messages.post(session, conversation_id=conversation_id, sender="bot",
                               text=LOST_TURN_APOLOGY, client_msg_id=f"lost-turn:{last.id}",
                               now=now, data={"event": "lost_turn", "message_id": last.id})
    return apology

"""The safety net under the custom actions, on SQLite and PostgreSQL: when the action server
fails on a turn, a handoff, an opt-out or a callback the customer asked for is still written,
and the customer is told; anything else is an apology."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.client import ActionFailed, BotTurn, RasaUnavailable
from bot.failsafe import FailSafeBot, FailSafeConfig, request_of
from handoff import tickets
from persistence import store
from persistence.engine import session_scope

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
CONFIG = FailSafeConfig(bank="邮储银行", hotline="95580", timezone="Asia/Shanghai",
                        callback_claim_s=2 * 86400, callback_promise_min=30)


class ActionServerDown:
    """A Rasa client whose turns all lose their custom action (``ActionFailed``)."""

    def __init__(self, *actions: str) -> None:
        self.actions = list(actions)

    async def start(self, conversation_id, customer_id, channel, extra=None) -> BotTurn:
        return BotTurn(["您好"], [])

    async def send(self, conversation_id, text, metadata=None) -> BotTurn:
        raise ActionFailed("custom actions failed", self.actions, BotTurn([], []))

    async def parse(self, text):
        return None, None


def bot(staffed, *actions: str) -> FailSafeBot:
    return FailSafeBot(ActionServerDown(*actions), staffed, CONFIG, clock=lambda: NOW)


@pytest.mark.parametrize(("actions", "request_kind"), [
    (["action_create_handoff"], "handoff"),
    (["action_opt_out"], "opt_out"),
    (["action_book_callback"], "callback"),
    (["callback_form"], "callback"),
    (["action_present_offer", "action_opt_out"], "opt_out"),
    (["action_present_offer"], None),
    (["action_session_start"], None),
    ([], None),
])
def test_which_failed_actions_carry_a_request(actions, request_kind):
    assert request_of(actions) == request_kind


async def test_a_handoff_is_queued_and_the_customer_transferred(staffed):
    failsafe = bot(staffed, "action_create_handoff")
    await failsafe.start("call-fs-1", "C0001", "voice")
    turn = await failsafe.send("call-fs-1", "我要申请，帮我转人工")
    transfer = turn.directives[0]
    assert transfer.name == "transfer" and transfer.data["reason"] == "customer_requested"
    assert "正在为您转接" in turn.texts[0] and "不要挂机" in turn.texts[0]
    with session_scope(staffed) as session:
        ticket = tickets.get_ticket(session, transfer.data["handoff_id"])
        outcome = store.latest_outcome(session, "call-fs-1")
    assert (ticket.customer_id, ticket.channel, ticket.kind, ticket.branch_id) == ("C0001", "voice", "live", "JT")
    assert ticket.transcript == [{"speaker": "customer", "text": "我要申请，帮我转人工"}]
    assert outcome == "transferred"


async def test_an_opt_out_is_on_the_list_at_once_and_the_call_ends(staffed):
    failsafe = bot(staffed, "action_opt_out")
    with session_scope(staffed) as session:  # the conversation was opened by the action server
        store.start_conversation(session, "chat-fs-2", "C0002", "chat", None)
    turn = await failsafe.send("chat-fs-2", "以后别再打了")
    assert [d.name for d in turn.directives] == ["hangup"] and turn.directives[0].data["outcome"] == "opt_out"
    with session_scope(staffed) as session:
        assert store.is_do_not_contact(session, customer_id="C0002")
        assert store.is_do_not_contact(session, phone="13900139002"), "the number too"
        assert store.latest_outcome(session, "chat-fs-2") == "opt_out"


async def test_an_opt_out_from_a_conversation_nobody_knows_goes_to_a_person(staffed):
    turn = await bot(staffed, "action_opt_out").send("call-fs-unknown", "别再打了")
    assert turn.directives[0].data["outcome"] == "opt_out"
    with session_scope(staffed) as session:
        ticket = tickets.ticket_for_conversation(session, "call-fs-unknown")
    assert ticket.reason == "opt_out_request" and ticket.kind == "callback"


async def test_a_callback_at_a_time_the_customer_named_is_booked(staffed):
    failsafe = bot(staffed, "callback_form")
    await failsafe.start("call-fs-3", "C0003", "voice")
    turn = await failsafe.send("call-fs-3", "明天下午三点吧")
    hangup = turn.directives[0]
    assert hangup.data["outcome"] == "callback"
    due = datetime.fromisoformat(hangup.data["callback_at"])
    assert due.astimezone(timezone(timedelta(hours=8))).replace(tzinfo=None) == datetime(2026, 11, 24, 15, 0)
    assert "预约" in turn.texts[0]
    with session_scope(staffed) as session:
        booked = store.callbacks_for(session, "call-fs-3")
    assert [(b.customer_id, b.due_at, b.requested_text) for b in booked] == [("C0003", due, "明天下午三点吧")]


async def test_a_callback_without_a_time_becomes_a_task_for_the_branch(staffed):
    failsafe = bot(staffed, "callback_form")
    await failsafe.start("call-fs-4", "C0004", "voice")
    turn = await failsafe.send("call-fs-4", "再说吧，改天")
    assert turn.directives[0].data == {"outcome": "callback"}
    with session_scope(staffed) as session:
        ticket = tickets.ticket_for_conversation(session, "call-fs-4")
    assert (ticket.kind, ticket.status, ticket.customer_id) == ("callback", "queued", "C0004")
    assert ticket.callback_due_at == NOW + timedelta(minutes=30)
    assert ticket.claim_deadline == NOW + timedelta(days=2)


async def test_a_failed_turn_without_a_request_is_an_apology_and_writes_nothing(staffed):
    failsafe = bot(staffed, "action_present_offer")
    with pytest.raises(RasaUnavailable):
        await failsafe.send("call-fs-5", "是我")
    with session_scope(staffed) as session:
        assert tickets.ticket_for_conversation(session, "call-fs-5") is None
        assert store.latest_outcome(session, "call-fs-5") is None

"""The ``offercall chat --json`` summary and script reading."""

from bot.client import BotTurn, Directive
from offercall.cli.chat import ChatRecord, script_lines


def test_script_skips_blank_lines_and_comments():
    assert script_lines(["# 客户先确认身份", "是我", "", "  我想办理  "]) == ["是我", "我想办理"]


def test_transfer_summary_carries_the_handoff_id():
    record = ChatRecord("cli-1")
    record.add(BotTurn(["开场"], []))
    record.add(BotTurn(["正在转接"], [Directive("transfer", {"handoff_id": 4})]))
    summary = record.summary()
    assert summary["outcome"] == "transferred"
    assert summary["directives"] == [{"name": "transfer", "handoff_id": 4}]
    assert summary["bot_messages"] == ["开场", "正在转接"]
    assert summary["callback_at"] is None


def test_hangup_outcome_and_callback_time():
    record = ChatRecord("cli-2")
    record.add(BotTurn(["已预约"], [Directive("hangup", {"outcome": "callback", "callback_at": "2026-11-23T15:00:00+08:00"})]))
    summary = record.summary()
    assert summary["outcome"] == "callback"
    assert summary["callback_at"] == "2026-11-23T15:00:00+08:00"


def test_a_conversation_without_an_ending_directive_is_ended():
    assert ChatRecord("cli-3").summary()["outcome"] == "ended"

"""End-to-end conversations against the real trained Rasa model, the Rasa server and the
action server, on a test database loaded with the sample whitelist.

Each test is one outbound conversation with customer C0001 (张伟, 邮享贷 50,000 yuan,
3.6-7.2 %, 12 months), driven through the same client the chat and voice layers use.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.settings import PROJECT_ROOT
from handoff import tickets
from offercall.cli.chat import run_chat
from persistence import store
from persistence.engine import session_scope

pytestmark = pytest.mark.model

OFFER_DETAILS = ["五万", "邮享贷", "3.6", "7.2", "利率", "额度"]
SHANGHAI = ZoneInfo("Asia/Shanghai")


def talk(stack, *utterances: str, customer: str = "C0001") -> dict:
    record = asyncio.run(run_chat(stack.settings, customer, list(utterances), out=io.StringIO()))
    return record.summary()


def outcome_in_db(stack, conversation_id: str):
    with session_scope(stack.engine) as session:
        return store.latest_outcome(session, conversation_id)


def test_opening_discloses_the_assistant_and_asks_for_the_masked_name(bot_stack):
    result = talk(bot_stack)
    opening = result["bot_messages"][0]
    assert "智能助手" in opening and "邮储银行" in opening  # a chat: it writes, not speaks
    assert "张**先生" in opening and "张伟" not in opening
    assert not any(detail in opening for detail in OFFER_DETAILS)


def test_a_pharmacy_contact_is_asked_whether_they_run_the_pharmacy(bot_stack):
    # C0008 (黄丽) is the contact of 双流区康民大药房 for 医保贷
    asked_first = talk(bot_stack, "利率多少", customer="C0008")["bot_messages"]
    assert asked_first[0].endswith("请问您是双流区康民大药房的负责人吗？")
    assert "黄" not in asked_first[0]
    assert asked_first[-1].endswith("请问您是双流区康民大药房的负责人吗？")
    assert not any(detail in m for m in asked_first for detail in ["三万", "医保贷", "3.85"])
    confirmed = talk(bot_stack, "对，我是负责人", customer="C0008")["bot_messages"]
    assert any("预授信额度五万元" in m and "医保贷" in m for m in confirmed)


def test_right_person_hears_disclosure_then_the_offer(bot_stack):
    result = talk(bot_stack, "对，是我")
    messages = result["bot_messages"]
    disclosure = next(i for i, m in enumerate(messages) if "温馨提示" in m)
    offer = next(i for i, m in enumerate(messages) if "预授信额度五万元" in m)
    assert disclosure < offer
    for part in ["邮享贷", "3.6%", "7.2%", "12个月", "手机银行", "需要为您转接客户经理"]:
        assert part in messages[offer]


@pytest.mark.parametrize("answer", ["我不是他，你打错了", "不是"])
def test_wrong_person_reveals_no_offer_and_is_recorded(bot_stack, answer):
    result = talk(bot_stack, answer)
    assert result["outcome"] == "wrong_person"
    assert {"name": "hangup", "outcome": "wrong_person"} in result["directives"]
    assert not any(d in m for m in result["bot_messages"] for d in OFFER_DETAILS)
    assert outcome_in_db(bot_stack, result["conversation_id"]) == "wrong_person"


def test_rate_question_before_the_check_is_not_answered(bot_stack):
    result = talk(bot_stack, "利率是多少")
    reply = result["bot_messages"][1:]
    assert not any(d in m for m in reply for d in ["3.6", "7.2", "五万"])
    assert any("确认您的身份" in m for m in reply)


def test_opt_out_is_written_to_the_do_not_contact_list_at_once(bot_stack):
    # C0010 (吴秀兰), so that the other conversations with C0001 can go on
    result = talk(bot_stack, "是我", "以后别再给我打电话了", customer="C0010")
    assert result["outcome"] == "opt_out"
    with session_scope(bot_stack.engine) as session:
        assert store.is_do_not_contact(session, customer_id="C0010")
        assert store.is_do_not_contact(session, phone="13500135010")
        assert store.latest_outcome(session, result["conversation_id"]) == "opt_out"
    # honoured at once: the next contact with this customer ends without a pitch
    again = talk(bot_stack, "喂", customer="C0010")
    assert again["outcome"] == "ended"
    assert not any(d in m for m in again["bot_messages"] for d in OFFER_DETAILS)


def test_asking_to_apply_creates_a_handoff_and_a_transfer_directive(bot_stack):
    result = talk(bot_stack, "是我本人", "我想办理，帮我转客户经理")
    assert result["outcome"] == "transferred"
    transfer = next(d for d in result["directives"] if d["name"] == "transfer")
    with session_scope(bot_stack.engine) as session:
        handoff = tickets.get_ticket(session, transfer["handoff_id"])
    assert handoff.customer_id == "C0001"
    assert handoff.channel == "chat"
    assert handoff.reason == "customer_requested"
    assert handoff.offer_id is not None
    assert "request_handoff" in handoff.intents
    assert any(line["text"] == "我想办理，帮我转客户经理" for line in handoff.transcript)


def test_yes_to_the_transfer_question_creates_a_handoff(bot_stack):
    result = talk(bot_stack, "是的", "好的")
    assert result["outcome"] == "transferred"
    assert any(d["name"] == "transfer" and d["reason"] == "accepted_offer" for d in result["directives"])


def test_busy_customer_books_a_callback_at_the_time_they_named(bot_stack):
    before = datetime.now(SHANGHAI)
    result = talk(bot_stack, "我在开车呢，你明天下午再打吧")
    assert result["outcome"] == "callback"
    due = datetime.fromisoformat(result["callback_at"])
    assert due.date() == (before + timedelta(days=1)).date() and due.hour == 15
    assert any("明天下午" in m for m in result["bot_messages"])
    assert outcome_in_db(bot_stack, result["conversation_id"]) == "callback"


def test_busy_customer_without_a_time_is_asked_for_one(bot_stack):
    result = talk(bot_stack, "我现在在忙", "晚上八点吧")
    assert result["outcome"] == "callback"
    assert any("什么时候方便" in m for m in result["bot_messages"])
    assert datetime.fromisoformat(result["callback_at"]).hour == 20


def test_fraud_question_points_to_the_official_hotline(bot_stack):
    result = talk(bot_stack, "你们是不是骗子啊")
    reply = " ".join(result["bot_messages"][1:])
    assert "95580" in reply and "验证码" in reply
    assert "张**先生本人吗" in reply


def test_questions_after_the_offer_are_answered_from_it(bot_stack):
    result = talk(bot_stack, "是我", "利息怎么算的", "要手续费吗")
    text = " ".join(result["bot_messages"])
    assert "3.6%到7.2%" in text and "不收取任何手续费" in text


def test_repeat_says_the_last_turn_again(bot_stack):
    result = talk(bot_stack, "是我", "没听清，你再说一遍")
    offer_turn = [m for m in result["bot_messages"] if "预授信额度五万元" in m]
    assert len(offer_turn) == 2


def test_not_interested_ends_politely_without_a_second_push(bot_stack):
    result = talk(bot_stack, "是我", "我不需要贷款，谢谢")
    assert result["outcome"] == "not_interested"
    closing = result["bot_messages"][-1]
    assert "不打扰您了" in closing and "转接" not in closing


def test_already_has_loan_is_told_the_offer_stays(bot_stack):
    result = talk(bot_stack, "是我", "我已经在别的银行贷过款了")
    assert result["outcome"] == "already_has_loan"
    assert "保留" in result["bot_messages"][-1]


def test_goodbye_hangs_up(bot_stack):
    result = talk(bot_stack, "是我", "好的再见")
    assert result["outcome"] == "ended"
    assert result["directives"][-1]["name"] == "hangup"


def test_not_understood_twice_offers_a_human(bot_stack):
    result = talk(bot_stack, "今天天气怎么样", "玉米多少钱一斤", "好的")
    messages = result["bot_messages"]
    assert any("没有听清楚" in m for m in messages)
    assert any("人工" in m for m in messages)
    assert result["outcome"] == "transferred"


def test_cli_script_prints_each_turn_and_a_json_summary(bot_stack, tmp_path):
    script = tmp_path / "turns.txt"
    script.write_text("# 确认身份\n是我\n我想申请\n", encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "offercall", "chat", "--customer", "C0001",
         "--script", str(script), "--json"],
        cwd=PROJECT_ROOT, env={**bot_stack.env}, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert "客户: 是我" in lines and any(line.startswith("机器人:") for line in lines)
    summary = json.loads(lines[-1])
    assert summary["outcome"] == "transferred"
    assert summary["callback_at"] is None
    assert any(d["name"] == "transfer" and d["handoff_id"] for d in summary["directives"])


def test_cli_rejects_an_unknown_customer(bot_stack):
    completed = subprocess.run(
        [sys.executable, "-m", "offercall", "chat", "--customer", "C9999", "--script", "/dev/null"],
        cwd=PROJECT_ROOT, env={**bot_stack.env}, capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 2
    assert "unknown customer" in completed.stderr


@pytest.mark.postgres
def test_the_whole_bot_runs_on_postgresql_with_rasas_tracker_store_beside_it(bot_stack_postgres):
    from sqlalchemy import text

    result = talk(bot_stack_postgres, "是我", "帮我转客户经理")
    assert result["outcome"] == "transferred"
    handoff_id = next(d["handoff_id"] for d in result["directives"] if d["name"] == "transfer")
    with session_scope(bot_stack_postgres.engine) as session:
        assert tickets.get_ticket(session, handoff_id).customer_id == "C0001"
        rasa_events = session.execute(
            text("SELECT count(*) FROM events WHERE sender_id = :id"), {"id": result["conversation_id"]}
        ).scalar_one()
    assert rasa_events > 0  # Rasa's SQL tracker store writes to the same PostgreSQL database

"""The text-message rules: opt-out replies, delivery reports, templates, sending decisions, pace."""

from __future__ import annotations

from datetime import datetime, time, timezone

import pytest

from core.vocabulary import SmsStatus
from outbound.compliance import CallingWindow
from outbound.sms_rules import (
    MAX_REPLY_CHARS,
    OPT_OUT_HINT,
    TEMPLATES,
    TemplateError,
    TokenBucket,
    decide_send,
    is_opt_out,
    national_number,
    render,
    reply_parts,
    segments,
    status_after_report,
)

UTC = timezone.utc


@pytest.mark.parametrize("reply", ["TD", "td", "Td", " TD ", "ＴＤ", "T", "退订", "TD退订", "退订。",
                                   "TD!", "【TD】"])
def test_the_opt_out_instruction_in_any_width_case_or_punctuation_is_an_opt_out(reply):
    assert is_opt_out(reply)


@pytest.mark.parametrize("reply", ["利率多少", "TDD", "好的", "我不退订", "STOP IT", "", "是我"])
def test_other_replies_are_not_opt_outs(reply):
    assert not is_opt_out(reply)


def test_a_message_carries_the_link_and_the_opt_out_instruction_but_no_offer_detail():
    text = render(TEMPLATES["offer"], bank="邮储银行", link="https://b.example/chat?t=abc")
    assert text.startswith("【邮储银行】")
    assert "https://b.example/chat?t=abc" in text
    assert text.endswith(OPT_OUT_HINT)
    assert "万" not in text and "%" not in text  # no amount, no rate: the phone may not be theirs


@pytest.mark.parametrize(("template", "problem"), [
    ("【{bank}】您好", "link"),
    ("{bank}{link}{name}", "unknown placeholders"),
    ("{bank} {link", "malformed"),
    ("{link}" + "很长" * 200, "at most"),
])
def test_a_bad_template_is_refused_with_the_reason(template, problem):
    with pytest.raises(TemplateError, match=problem):
        render(template, bank="邮储银行", link="https://b.example/c")


def test_long_messages_are_counted_in_parts():
    assert segments("中" * 70) == 1
    assert segments("中" * 71) == 2
    assert segments("a" * 160) == 1
    assert segments("a" * 161) == 2


@pytest.mark.parametrize(("reports", "final"), [
    ([8, 1], SmsStatus.DELIVERED),
    ([1, 8], SmsStatus.DELIVERED),  # a late "sent to the SMSC" never moves it back
    ([8, 2], SmsStatus.FAILED),
    ([16], SmsStatus.FAILED),
    ([16, 1], SmsStatus.FAILED),  # a final status never changes
    ([4, 8], SmsStatus.SENT),
    ([1, 1], SmsStatus.DELIVERED),
])
def test_delivery_reports_only_move_a_message_forward(reports, final):
    status = SmsStatus.SUBMITTED
    for code in reports:
        status = status_after_report(status, code)
    assert status == final


def test_an_unknown_report_code_or_a_report_on_a_reply_is_refused():
    with pytest.raises(ValueError, match="unknown"):
        status_after_report(SmsStatus.SUBMITTED, 3)
    with pytest.raises(ValueError, match="received"):
        status_after_report(SmsStatus.RECEIVED, 1)


WINDOW = CallingWindow(start=time(9), end=time(20), timezone="Asia/Shanghai")


def test_a_message_goes_only_inside_the_window_never_twice_never_after_an_opt_out():
    noon = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    night = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)  # 22:00
    assert decide_send(WINDOW, noon, opted_out=False, already_sent=False).verdict == "send"
    waiting = decide_send(WINDOW, night, opted_out=False, already_sent=False)
    assert waiting.verdict == "wait" and waiting.not_before == datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
    assert decide_send(WINDOW, noon, opted_out=True, already_sent=False).reason == "do_not_contact"
    assert decide_send(WINDOW, noon, opted_out=False, already_sent=True).reason == "already_sent"
    assert decide_send(WINDOW, night, opted_out=True, already_sent=False).verdict == "skip"


def test_the_pace_holds_the_rate_after_a_burst():
    bucket = TokenBucket(rate=10, burst=2)
    waits = [bucket.wait_s(0.0) for _ in range(5)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2:] == pytest.approx([0.1, 0.2, 0.3])
    assert bucket.wait_s(10.0) == 0.0  # idle time refills the burst, no more


def test_a_pace_without_a_rate_is_refused():
    with pytest.raises(ValueError):
        TokenBucket(rate=0)


def test_the_bots_texts_go_as_few_messages_without_a_repeated_question():
    opening = "您好，我是邮储银行的智能助手。请问您是王**女士本人吗？"
    assert reply_parts([opening, "请问您是王**女士本人吗？"]) == [opening]
    assert reply_parts(["好的。", "", "再见！"]) == ["好的。再见！"]
    long = "长" * (MAX_REPLY_CHARS + 10)
    parts = reply_parts(["开头。", long])
    assert "".join(parts) == "开头。" + long and all(len(p) <= MAX_REPLY_CHARS for p in parts)


@pytest.mark.parametrize(("given", "number"), [("+8613800138001", "13800138001"),
                                               ("008613800138001", "13800138001"),
                                               ("8613800138001", "13800138001"),
                                               ("13800138001", "13800138001"),
                                               ("95580", "95580")])
def test_replies_from_a_number_with_the_country_code_find_the_customer(given, number):
    assert national_number(given) == number

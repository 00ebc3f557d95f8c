"""What the bot says: offer wording, disclosure, and what may be said before the right-party check."""

from datetime import date

import pytest

from bot.actions import texts

VOICE = texts.Voice(bank="邮储银行", hotline="95580")
OFFER = texts.Offer("邮享贷", 50000, 3.6, 7.2, 12, date(2027, 12, 31))
FAQ = texts.load_faq()
CONTRACT_QUESTIONS = [
    "ask_interest_rate", "ask_amount", "ask_repayment", "ask_requirements", "ask_fees",
    "ask_disbursement_time", "suspect_fraud", "ask_how_got_number", "ask_is_robot",
]


def test_offer_is_spoken_naturally_with_every_term():
    pitch = texts.offer_pitch(VOICE, OFFER)
    for part in ["邮享贷", "五万元", "3.6%", "7.2%", "12个月", "手机银行", "几分钟", "无需抵押"]:
        assert part in pitch
    assert pitch.endswith(texts.HANDOFF_QUESTION)


def test_opening_says_it_is_the_banks_assistant_and_asks_for_the_masked_name():
    opening = texts.opening(VOICE, texts.addressee("张**", "M"))
    assert "邮储银行的智能语音助手" in opening
    assert opening.endswith("请问您是张**先生本人吗？")
    assert "五万" not in opening and "利率" not in opening


@pytest.mark.parametrize(("whom", "expected"), [
    (texts.addressee("王**", "F"), "请问您是王**女士本人吗？"),
    (texts.addressee("王**", "F", "双流区康民大药房"), "请问您是双流区康民大药房的负责人吗？"),
    (texts.addressee("王**", None, ""), "请问您是王**本人吗？"),
])
def test_the_right_party_question_asks_for_the_person_or_the_one_who_runs_the_business(whom, expected):
    for variant in texts.script_variants():
        assert texts.opening(VOICE, whom, variant).endswith(expected)
    assert texts.follow_up("identity", whom) == expected
    assert texts.identity_needed(whom).endswith(expected)


@pytest.mark.parametrize(("gender", "expected"), [("M", "王**先生"), ("F", "王**女士"), (None, "王**")])
def test_display_name_honorific(gender, expected):
    assert texts.display_name("王**", gender) == expected


def test_disclosure_names_ai_bank_and_purpose():
    disclosure = texts.disclosure(VOICE)
    assert "智能语音助手" in disclosure and "邮储银行" in disclosure and "预授信" in disclosure


def test_every_contract_question_has_an_faq_answer():
    for intent in CONTRACT_QUESTIONS:
        assert texts.answer(intent, FAQ, VOICE, OFFER, identity_confirmed=True)


@pytest.mark.parametrize("intent", ["ask_interest_rate", "ask_amount", "ask_repayment"])
def test_offer_details_are_withheld_before_the_right_party_check(intent):
    assert texts.answer(intent, FAQ, VOICE, OFFER, identity_confirmed=False) is None


def test_answers_are_filled_from_the_offer():
    assert "3.6%到7.2%" in texts.answer("ask_interest_rate", FAQ, VOICE, OFFER, True)
    assert "五万元" in texts.answer("ask_amount", FAQ, VOICE, OFFER, True)
    assert "12个月" in texts.answer("ask_repayment", FAQ, VOICE, OFFER, True)


def test_fraud_answer_points_to_the_official_hotline_and_never_asks_for_codes():
    reply = texts.answer("suspect_fraud", FAQ, VOICE, None, identity_confirmed=False)
    assert "95580" in reply and "验证码" in reply and "密码" in reply


def test_robot_question_is_answered_honestly():
    assert "不是真人" in texts.answer("ask_is_robot", FAQ, VOICE, None, False)


def test_follow_up_depends_on_the_stage():
    assert texts.follow_up("identity", "张**先生本人") == "请问您是张**先生本人吗？"
    assert texts.follow_up("offer", "张**先生本人") == texts.HANDOFF_QUESTION
    assert texts.follow_up("human_offered", "张**先生本人") == texts.HUMAN_QUESTION


@pytest.mark.parametrize(("rate", "text"), [(3.6, "3.6"), (4.35, "4.35"), (5.0, "5"), (10.0, "10")])
def test_format_rate(rate, text):
    assert texts.format_rate(rate) == text


def test_chat_customers_are_not_told_about_a_phone_call():
    chat = texts.disclosure(VOICE, "chat") + texts.transfer_notice("chat")
    assert "智能助手" in chat and "通话" not in chat and "挂机" not in chat
    assert "通话由" in texts.disclosure(VOICE, "voice") and "挂机" in texts.transfer_notice("voice")

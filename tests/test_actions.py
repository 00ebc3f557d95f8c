"""The custom actions with a real rasa-sdk Tracker and CollectingDispatcher, on SQLite and
PostgreSQL: what they say, which directives they return, and what they write."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import texts
from bot.actions.actions import (
    ActionAnswerQuestion,
    ActionBookCallback,
    ActionCreateHandoff,
    ActionEndWrongPerson,
    ActionHandleFallback,
    ActionHandleSilence,
    ActionOptOut,
    ActionPresentOffer,
    ActionSessionStart,
    ValidateCallbackForm,
)
from bot.actions.context import ActionContext, set_context
from core.settings import PROJECT_ROOT, Settings
from handoff import tickets
from outbound.whitelist import import_whitelist_file
from persistence import store
from persistence.engine import session_scope

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)
CONVERSATION = "conv-test"


@pytest.fixture
def context(engine, db_url):
    import_whitelist_file(engine, PROJECT_ROOT / "data" / "whitelist_sample.csv")
    action_context = ActionContext(Settings.from_environ({"DATABASE_URL": db_url}), clock=lambda: NOW)
    action_context.__dict__["engine"] = engine  # share the test's engine (cached_property slot)
    set_context(action_context)
    yield action_context
    set_context(ActionContext())


def user(text: str, intent: str, confidence: float = 0.99, entities=None, metadata=None) -> dict:
    return {
        "event": "user", "text": text, "timestamp": 1.0, "metadata": metadata or {},
        "parse_data": {"text": text, "intent": {"name": intent, "confidence": confidence},
                       "entities": entities or []},
    }


def bot(text: str) -> dict:
    return {"event": "bot", "text": text, "timestamp": 1.0}


def action(name: str) -> dict:
    return {"event": "action", "name": name, "timestamp": 1.0}


def tracker(latest: dict, *, slots=None, history=(), active_loop=None) -> Tracker:
    base_slots = {"customer_id": "C0001", "channel": "voice", "addressee": "张**先生本人",
                  "stage": "identity", "session_started_metadata": None, "requested_slot": None}
    return Tracker(
        sender_id=CONVERSATION, slots={**base_slots, **(slots or {})},
        latest_message=latest["parse_data"] | {"text": latest["text"], "metadata": latest["metadata"]},
        events=[*history, latest], paused=False, followup_action=None,
        active_loop=active_loop or {}, latest_action_name="action_listen",
    )


def run(action_instance, tracker_: Tracker) -> tuple[list[dict], list[dict]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action_instance.run(dispatcher, tracker_, {}))
    return dispatcher.messages, events


def rendered(message: dict) -> str:
    """A message's text; a domain response is rendered as Rasa would for the default variant."""
    if message.get("response"):
        return texts.script_text(message["response"], None, message)
    return message.get("text") or ""


def texts_of(messages: list[dict]) -> str:
    return "".join(rendered(m) for m in messages)


def directives(messages: list[dict]) -> list[dict]:
    return [m["custom"] for m in messages if (m.get("custom") or {}).get("directive")]


def slot_sets(events: list[dict]) -> dict:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_session_start_opens_with_the_masked_name_and_records_the_conversation(context):
    start = user("/session_start", "session_start", metadata={"customer_id": "C0001", "channel": "voice"})
    messages, events = run(ActionSessionStart(), tracker(
        start, slots={"stage": None, "session_started_metadata": {"customer_id": "C0001", "channel": "voice"}}))
    opening = texts_of(messages)
    assert "智能语音助手" in opening and "张**先生" in opening and "张伟" not in opening
    assert "五万" not in opening
    assert slot_sets(events)["stage"] == "identity"
    with session_scope(context.engine) as session:
        assert store.latest_outcome(session, CONVERSATION) is None  # started, not ended


def test_session_start_for_an_opted_out_customer_hangs_up_at_once(context):
    with session_scope(context.engine) as session:
        store.add_do_not_contact(session, customer_id="C0001", phone=None, utterance="别打了",
                                 conversation_id=None)
    start = user("/session_start", "session_start")
    messages, _ = run(ActionSessionStart(), tracker(
        start, slots={"stage": None, "session_started_metadata": {"customer_id": "C0001"}}))
    assert directives(messages)[0]["directive"] == "hangup"
    assert "额度" not in texts_of(messages)


def test_offer_comes_after_the_disclosure_with_every_term(context):
    messages, events = run(ActionPresentOffer(), tracker(user("是我", "affirm")))
    first, second = (rendered(m) for m in messages if rendered(m))
    assert "智能" in first and "邮储银行" in first
    for part in ["邮享贷", "五万元", "3.6%", "7.2%", "12个月", "手机银行"]:
        assert part in second
    assert slot_sets(events)["stage"] == "offer"
    assert directives(messages) == [{"directive": "dtmf_request", "expect": "yes_no"}]


def test_rate_question_before_the_check_reveals_nothing(context):
    messages, _ = run(ActionAnswerQuestion(), tracker(user("利息多少", "ask_interest_rate")))
    assert "3.6" not in texts_of(messages) and "本人" in texts_of(messages)


def test_amount_question_after_the_offer_checks_the_requested_amount(context):
    history = [action("action_present_offer")]
    messages, events = run(ActionAnswerQuestion(), tracker(
        user("能不能借十万", "ask_amount"), slots={"stage": "offer"}, history=history))
    assert "十万元" in texts_of(messages) and "超过" in texts_of(messages)
    assert slot_sets(events)["amount"] == 100000


def test_handoff_record_has_customer_offer_channel_reason_transcript_and_intents(context):
    history = [bot("请问是张**先生吗？"), user("是我", "affirm"), action("action_present_offer"),
               bot("您已获得邮享贷预授信额度五万元……")]
    messages, events = run(ActionCreateHandoff(), tracker(
        user("我想办", "request_handoff"), slots={"stage": "offer"}, history=history))
    (transfer,) = [d for d in directives(messages) if d["directive"] == "transfer"]
    with session_scope(context.engine) as session:
        handoff = tickets.get_ticket(session, transfer["handoff_id"])
        offer_id = store.get_customer_offer(session, "C0001").offer_id
        assert store.latest_outcome(session, CONVERSATION) == "transferred"
    assert (handoff.customer_id, handoff.offer_id, handoff.channel) == ("C0001", offer_id, "voice")
    assert handoff.reason == "customer_requested" == transfer["reason"]
    assert handoff.intents == ["affirm", "request_handoff"]
    assert [line["text"] for line in handoff.transcript][-1] == "我想办"
    assert slot_sets(events)["stage"] == "transferred"


def test_a_texting_customer_who_wants_a_human_gets_a_callback_task_not_a_live_wait(context):
    messages, _ = run(ActionCreateHandoff(), tracker(
        user("我想办", "request_handoff"), slots={"stage": "offer", "channel": "sms"}))
    (transfer,) = [d for d in directives(messages) if d["directive"] == "transfer"]
    with session_scope(context.engine) as session:
        handoff = tickets.get_ticket(session, transfer["handoff_id"])
    assert (handoff.channel, handoff.kind) == ("sms", "callback")
    promised = context.settings.callback_promise_min
    assert handoff.callback_due_at - handoff.waiting_since == timedelta(minutes=promised)
    assert f"{promised}分钟内给您回电" in texts_of(messages)


def test_opt_out_is_durable_before_the_confirmation_is_said(context):
    messages, _ = run(ActionOptOut(), tracker(user("以后别给我打电话了", "opt_out"), slots={"stage": "offer"}))
    with session_scope(context.engine) as session:
        assert store.is_do_not_contact(session, customer_id="C0001")
        assert store.is_do_not_contact(session, phone="13800138001")
        assert store.latest_outcome(session, CONVERSATION) == "opt_out"
    assert directives(messages) == [{"directive": "hangup", "outcome": "opt_out"}]


def test_wrong_person_ends_without_any_offer_detail(context):
    messages, _ = run(ActionEndWrongPerson(), tracker(user("你打错了", "wrong_person")))
    spoken = texts_of(messages)
    assert not any(detail in spoken for detail in ["五万", "邮享贷", "利率", "额度"])
    assert directives(messages)[0]["outcome"] == "wrong_person"
    with session_scope(context.engine) as session:
        assert store.latest_outcome(session, CONVERSATION) == "wrong_person"


def fill_callback_form(latest: dict, slots: dict) -> tuple[dict, list[dict]]:
    """What the form validation action does with one customer turn: extract, then validate."""
    form = ValidateCallbackForm()
    dispatcher = CollectingDispatcher()
    state = tracker(latest, slots=slots)
    extracted = asyncio.run(form.extract_callback_time(dispatcher, state, {}))
    if "callback_time" not in extracted:
        return extracted, dispatcher.messages
    validated = asyncio.run(form.validate_callback_time(extracted["callback_time"], dispatcher, state, {}))
    return validated, dispatcher.messages


def test_callback_form_reads_the_time_and_booking_confirms_it(context):
    latest = user("我在开车 明天下午三点再打", "busy_callback",
                  entities=[{"entity": "callback_time", "value": "明天下午三点"}])
    filled, _ = fill_callback_form(latest, {"stage": "offer"})
    assert filled["callback_at"] == "2026-11-23T15:00:00+08:00"

    messages, _ = run(ActionBookCallback(), tracker(latest, slots={"stage": "offer", **filled}))
    assert "明天下午三点" in texts_of(messages)
    assert directives(messages) == [{"directive": "hangup", "outcome": "callback",
                                     "callback_at": "2026-11-23T15:00:00+08:00"}]
    with session_scope(context.engine) as session:
        (callback,) = store.callbacks_for(session, CONVERSATION)
    assert callback.due_at == datetime(2026, 11, 23, 7, 0, tzinfo=ZoneInfo("UTC"))


def test_unclear_callback_time_is_asked_again(context):
    filled, messages = fill_callback_form(user("嗯嗯那个", "affirm"), {"requested_slot": "callback_time"})
    assert filled["callback_time"] is None and "没听清" in texts_of(messages)


def test_a_question_while_the_time_is_asked_is_left_to_its_own_rule(context):
    filled, messages = fill_callback_form(user("利息多少", "ask_interest_rate"),
                                          {"requested_slot": "callback_time"})
    assert filled == {} and messages == []


def test_not_understood_is_reprompted_once_then_a_human_is_offered(context):
    first = [user("阿巴阿巴", "nlu_fallback", 0.2)]
    messages, events = run(ActionHandleFallback(), tracker(first[0]))
    assert "没听明白" in texts_of(messages) or "抱歉" in texts_of(messages)
    assert "stage" not in slot_sets(events)

    second = user("呜呜呜", "nlu_fallback", 0.2)
    messages, events = run(ActionHandleFallback(), tracker(
        second, history=[*first, action("action_handle_fallback")]))
    assert "人工" in texts_of(messages) or "客户经理" in texts_of(messages)
    assert slot_sets(events)["stage"] == "human_offered"


def test_first_silence_asks_whether_the_customer_is_there_and_repeats_the_question(context):
    silence = user("/silence_timeout", "silence_timeout")
    messages, events = run(ActionHandleSilence(), tracker(silence, history=[bot("请问您是张**先生本人吗？")]))
    assert "还在听吗" in texts_of(messages) and "本人吗" in texts_of(messages)
    assert directives(messages) == [{"directive": "dtmf_request", "expect": "identity"}]
    assert events == []


def test_second_silence_in_a_row_says_goodbye_hangs_up_and_records_no_response(context):
    first = user("/silence_timeout", "silence_timeout")
    second = user("/silence_timeout", "silence_timeout")
    messages, events = run(ActionHandleSilence(), tracker(
        second, slots={"stage": "offer"}, history=[first, bot("喂，您好，请问您还在听吗？")]))
    assert "再见" in texts_of(messages)
    assert directives(messages) == [{"directive": "hangup", "outcome": "no_response"}]
    assert slot_sets(events)["stage"] == "ended"
    with session_scope(context.engine) as session:
        assert store.latest_outcome(session, CONVERSATION) == "no_response"


def test_a_spoken_answer_between_silences_starts_the_count_again(context):
    history = [user("/silence_timeout", "silence_timeout"), bot("还在听吗"), user("是的", "affirm")]
    silence = user("/silence_timeout", "silence_timeout")
    messages, _ = run(ActionHandleSilence(), tracker(silence, slots={"stage": "offer"}, history=history))
    assert directives(messages) == [{"directive": "dtmf_request", "expect": "yes_no"}]


def test_silence_while_asking_for_a_callback_time_asks_for_the_time_again(context):
    silence = user("/silence_timeout", "silence_timeout")
    messages, _ = run(ActionHandleSilence(), tracker(
        silence, slots={"stage": "offer", "requested_slot": "callback_time"},
        active_loop={"name": "callback_form"}))
    assert "什么时候方便" in texts_of(messages)
    assert directives(messages) == [{"directive": "dtmf_request", "expect": "callback_time"}]


def test_the_dialers_script_variant_becomes_a_slot_before_the_opening_and_the_offer_is_tagged(context):
    metadata = {"customer_id": "C0001", "channel": "voice", "script_variant": "B"}
    start = user("/session_start", "session_start", metadata=metadata)
    messages, events = run(ActionSessionStart(), tracker(
        start, slots={"stage": None, "session_started_metadata": metadata}))
    assert slot_sets(events)["script_variant"] == "B"
    assert [m["response"] for m in messages if m.get("response")] == ["utter_opening"]
    messages, _ = run(ActionPresentOffer(), tracker(user("是我", "affirm")))
    assert messages[0]["custom"] == {"prompt": "disclosure"}
    assert messages[1]["response"] == "utter_offer_pitch"


CUT_OFF = {"unheard": ["disclosure", "offer"]}
OFFERED = [bot("请问是张**先生吗？"), user("是我", "affirm"), action("action_present_offer")]


def test_a_question_that_cut_off_the_disclosure_is_answered_then_disclosure_and_offer_are_said_whole(context):
    messages, events = run(ActionAnswerQuestion(), tracker(
        user("你是机器人吗", "ask_is_robot", metadata=CUT_OFF), slots={"stage": "offer"}, history=OFFERED))
    said = [rendered(m) for m in messages if rendered(m)]
    assert len(said) == 3 and "智能" in said[0]
    assert said[1] == texts.disclosure(context.voice, "voice") and "五万元" in said[2]
    assert [m.get("custom", {}).get("prompt") for m in messages if rendered(m)][1] == "disclosure"
    assert slot_sets(events)["stage"] == "offer"
    assert directives(messages)[-1] == {"directive": "dtmf_request", "expect": "yes_no"}


def test_an_offer_cut_off_alone_is_said_again_without_the_disclosure(context):
    messages, _ = run(ActionAnswerQuestion(), tracker(
        user("利息多少", "ask_interest_rate", metadata={"unheard": ["offer"]}), slots={"stage": "offer"},
        history=OFFERED))
    said = texts_of(messages)
    assert "温馨提示" not in said and said.count("邮享贷") >= 1 and "12个月" in said


def test_a_yes_over_the_cut_off_offer_is_not_taken_as_wanting_it(context):
    messages, events = run(ActionCreateHandoff(), tracker(
        user("好的", "affirm", metadata=CUT_OFF), slots={"stage": "offer"}, history=OFFERED))
    assert not [d for d in directives(messages) if d["directive"] == "transfer"]
    assert "五万元" in texts_of(messages) and slot_sets(events)["stage"] == "offer"
    with session_scope(context.engine) as session:
        assert store.latest_outcome(session, CONVERSATION) is None


def test_asking_for_a_person_over_the_cut_off_offer_is_still_transferred(context):
    messages, _ = run(ActionCreateHandoff(), tracker(
        user("转人工", "request_handoff", metadata=CUT_OFF), slots={"stage": "offer"}, history=OFFERED))
    assert [d["directive"] for d in directives(messages)] == ["transfer"]


def test_words_not_understood_over_the_disclosure_get_it_said_again(context):
    messages, _ = run(ActionHandleFallback(), tracker(
        user("嗯那个", "nlu_fallback", metadata=CUT_OFF), slots={"stage": "offer"}, history=OFFERED))
    said = texts_of(messages)
    assert said.startswith(texts.NOT_UNDERSTOOD) and "温馨提示" in said and "五万元" in said


def test_a_cut_off_reported_before_the_offer_stage_changes_nothing(context):
    messages, _ = run(ActionAnswerQuestion(), tracker(
        user("你是机器人吗", "ask_is_robot", metadata=CUT_OFF), slots={"stage": "identity"}))
    assert "温馨提示" not in texts_of(messages) and "五万" not in texts_of(messages)


"""Readings of the conversation history the actions rely on."""

from bot.actions import history


def user(text: str, intent: str, confidence: float = 0.9) -> dict:
    return {
        "event": "user",
        "text": text,
        "timestamp": 1.0,
        "parse_data": {"intent": {"name": intent, "confidence": confidence}, "entities": []},
    }


def bot(text: str | None, custom: dict | None = None) -> dict:
    return {"event": "bot", "text": text, "timestamp": 2.0, "data": {"custom": custom}}


START = user("/session_start", "session_start", 1.0)


def test_transcript_keeps_both_sides_with_intents_and_drops_synthetic_messages():
    events = [START, bot("请问您是张**先生本人吗？"), user("是我", "affirm", 0.97), bot("额度五万元")]
    lines = history.transcript(events)
    assert [line["speaker"] for line in lines] == ["bot", "customer", "bot"]
    assert lines[1] == {
        "speaker": "customer", "text": "是我", "intent": "affirm", "confidence": 0.97, "timestamp": 1.0,
    }


def test_transcript_is_cut_to_the_last_turns():
    events = [user(f"第{i}句", "out_of_scope") for i in range(30)]
    lines = history.transcript(events, last_turns=5)
    assert [line["text"] for line in lines] == [f"第{i}句" for i in range(25, 30)]


def test_detected_intents_in_order():
    events = [START, user("你们是骗子吧", "suspect_fraud"), user("是我", "affirm"), user("我想办", "request_handoff")]
    assert history.detected_intents(events) == ["suspect_fraud", "affirm", "request_handoff"]


def test_previous_bot_turn_is_the_whole_turn_before_the_latest_message():
    events = [
        START, bot("开场白"), user("是我", "affirm"),
        bot("披露"), bot("额度五万元"), bot(None, {"directive": "x"}),
        user("再说一遍", "ask_repeat"),
    ]
    assert history.previous_bot_turn(events) == ["披露", "额度五万元"]


def test_previous_bot_turn_is_empty_at_the_start():
    assert history.previous_bot_turn([user("再说一遍", "ask_repeat")]) == []


def test_consecutive_fallbacks_count_only_the_latest_run():
    assert history.consecutive_fallbacks([user("啊", "nlu_fallback")]) == 1
    events = [user("啊", "nlu_fallback"), user("是我", "affirm"), user("天气", "out_of_scope"), user("嗯？", "nlu_fallback")]
    assert history.consecutive_fallbacks(events) == 2
    assert history.consecutive_fallbacks([user("啊", "nlu_fallback"), user("是", "affirm")]) == 0
    assert history.consecutive_fallbacks([START]) == 0
